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
	cfg, db, err := openConfigDB(ctx, env, cfgPath)
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

// openConfigDB loads the config and opens the database of its existing
// data folder, for commands that need no keys.
func openConfigDB(ctx context.Context, env Env, cfgPath string) (config.Config, *sqlite.DB, error) {
	cfg, err := config.Load(cfgPath, env.Environ)
	if err != nil {
		return cfg, nil, err
	}
	db, err := openExistingDB(ctx, cfg)
	return cfg, db, err
}
