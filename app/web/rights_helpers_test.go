package web

import (
	"path/filepath"
	"testing"
	"time"

	"context"

	"zimage/app/auth"
	"zimage/app/media"
	"zimage/app/privacy"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// rightsServices are the export, data-request, support and usage services
// of a test server.
type rightsServices struct {
	support    *privacy.Support
	exports    *privacy.Exports
	requests   *privacy.Requests
	usage      *privacy.Usage
	exportsDir string
}

// exportKeep is the test servers' export download window.
const exportKeep = 7 * 24 * time.Hour

func newRightsServices(t testing.TB, dir string, db *sqlite.DB, keys *vault.Vault, accounts *auth.Service, m *media.Store, policies *privacy.Policies) rightsServices {
	t.Helper()
	rs := rightsServices{exportsDir: filepath.Join(dir, "exports")}
	rs.exports = privacy.NewExports(db, keys, accounts, m, policies, privacy.ExportOptions{Dir: rs.exportsDir, Keep: exportKeep})
	ctx, cancel := context.WithCancel(context.Background())
	rs.exports.Start(ctx)
	t.Cleanup(func() { cancel(); rs.exports.Stop() })
	rs.requests = privacy.NewRequests(db, keys, rs.exports, nil)
	rs.support = privacy.NewSupport(db, keys, nil)
	rs.usage = privacy.NewUsage(db, nil)
	return rs
}

func sqliteAuditFilter(subject string) sqlite.AuditFilter {
	return sqlite.AuditFilter{SubjectID: subject, Limit: 1000}
}
