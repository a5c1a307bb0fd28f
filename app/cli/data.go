package cli

import (
	"context"
	"log/slog"

	"zimage/app/config"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// dataFolder is an existing data folder opened by a command that works on
// personal data beside (or without) a running server: its config, database,
// keyring and a logger.
type dataFolder struct {
	cfg  config.Config
	db   *sqlite.DB
	keys *vault.Vault
	log  *slog.Logger
}

// openDataFolder loads the config and opens the database (which must exist)
// and the keyring, with the master key from the file or ZIMAGE_MASTER_KEY.
func openDataFolder(ctx context.Context, env Env, cfgPath string) (*dataFolder, error) {
	cfg, err := config.Load(cfgPath, env.Environ)
	if err != nil {
		return nil, err
	}
	db, err := openExistingDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	keys, err := vault.Open(cfg.Server.DataDir, lookupEnv(env.Environ, "ZIMAGE_MASTER_KEY"))
	if err != nil {
		db.Close()
		return nil, err
	}
	return &dataFolder{cfg: cfg, db: db, keys: keys, log: newLogger(Env{Stderr: env.Stderr}, cfg.Server)}, nil
}

func (d *dataFolder) close() {
	d.keys.Close()
	d.db.Close()
}
