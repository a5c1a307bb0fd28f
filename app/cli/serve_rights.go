package cli

import (
	"context"
	"log/slog"

	"zimage/app/auth"
	"zimage/app/config"
	"zimage/app/media"
	"zimage/app/privacy"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// rightsServices are the export worker, data-rights requests, support
// tickets and usage events of a running server.
type rightsServices struct {
	support  *privacy.Support
	exports  *privacy.Exports
	requests *privacy.Requests
	usage    *privacy.Usage
}

// startRights builds them and starts the export worker, which first
// rebuilds exports a previous run left unfinished. stop waits for it.
func startRights(ctx context.Context, cfg config.Config, db *sqlite.DB, keys *vault.Vault, accounts *auth.Service, m *media.Store, policies *privacy.Policies, log *slog.Logger) (rightsServices, func()) {
	rs := rightsServices{
		support: privacy.NewSupport(db, keys, log),
		exports: privacy.NewExports(db, keys, accounts, m, policies, privacy.ExportOptions{Dir: exportsDir(cfg), Keep: cfg.Retention.Exports.D(), Log: log}),
		usage:   privacy.NewUsage(db, log),
	}
	rs.requests = privacy.NewRequests(db, keys, rs.exports, log)
	rs.exports.Start(ctx)
	return rs, rs.exports.Stop
}
