package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/config"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// openAccounts opens the database, keyring and account service of the
// configured data folder. It works beside a running server: SQLite lets
// both write, one at a time.
func openAccounts(ctx context.Context, env Env, cfgPath string) (*auth.Service, *sqlite.DB, func(), error) {
	cfg, err := config.Load(cfgPath, env.Environ)
	if err != nil {
		return nil, nil, nil, err
	}
	path := filepath.Join(cfg.Server.DataDir, "zimage.db")
	keys, err := vault.Open(cfg.Server.DataDir, lookupEnv(env.Environ, "ZIMAGE_MASTER_KEY"))
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		keys.Close()
		return nil, nil, nil, err
	}
	svc := auth.New(db, keys, authOptions(cfg, nil))
	return svc, db, func() { db.Close(); keys.Close() }, nil
}

func runUser(ctx context.Context, env Env, args []string) error {
	const synopsis = "user create|list|disable …\n\n" +
		"  user create --email E --username U [--admin|--support] [--password-stdin]\n" +
		"      Creates an account whatever the sign-up mode. The password is read from the first line of\n" +
		"      stdin with --password-stdin; otherwise one is generated and printed once. Creating an account\n" +
		"      here affirms that its person is old enough (auth.min_age).\n" +
		"  user list       lists accounts (id, username, role, 2FA, state); emails stay sealed\n" +
		"  user disable U  disables the account U (username or email) and ends its sessions"
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlags(env, "user", synopsis)
		if err := parse(fs, args); err != nil {
			return err
		}
		return &usageError{msg: "usage: zimage user create|list|disable (see zimage user --help)"}
	}
	switch args[0] {
	case "create":
		return runUserCreate(ctx, env, args[1:])
	case "list":
		return runUserList(ctx, env, args[1:])
	case "disable":
		return runUserDisable(ctx, env, args[1:])
	}
	return &usageError{msg: fmt.Sprintf("unknown user command %q: use create, list or disable", args[0])}
}

func runUserCreate(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "user create", "user create --email E --username U [--admin|--support] [--password-stdin]")
	cfgPath := configFlag(fs, env)
	email := fs.String("email", "", "the person's email `ADDRESS`")
	username := fs.String("username", "", "the account's `NAME`")
	admin := fs.Bool("admin", false, "make the account an admin")
	support := fs.Bool("support", false, "make the account support staff")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin instead of generating one")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *admin && *support {
		return &usageError{msg: "choose one of --admin and --support"}
	}
	role := app.RoleUser
	if *admin {
		role = app.RoleAdmin
	} else if *support {
		role = app.RoleSupport
	}
	password, generated := "", false
	if *fromStdin {
		if env.Stdin == nil {
			return &usageError{msg: "--password-stdin: no stdin"}
		}
		line, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		password, generated = auth.GeneratePassword(), true
	}
	svc, _, closeAll, err := openAccounts(ctx, env, *cfgPath)
	if err != nil {
		return err
	}
	defer closeAll()
	u, err := svc.SignUp(ctx, auth.SignUpInput{Email: *email, Username: *username, Password: password,
		AgeConfirmed: true, ByAdmin: true, Role: role})
	if err != nil {
		return withFields(err)
	}
	fmt.Fprintf(env.Stdout, "created %s %s (id %s)\n", u.Role, u.Username, u.ID)
	if generated {
		fmt.Fprintf(env.Stdout, "password: %s\n(shown once: pass it on safely and ask them to change it)\n", password)
	}
	return nil
}

// withFields puts per-field messages in the one line a terminal shows.
func withFields(err error) error {
	if ae, ok := err.(*app.Error); ok && len(ae.Fields) > 1 {
		var parts []string
		for k, v := range ae.Fields {
			parts = append(parts, k+": "+v)
		}
		return &app.Error{Code: ae.Code, Message: strings.Join(parts, "; ")}
	}
	return err
}

func runUserList(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "user list", "user list")
	cfgPath := configFlag(fs, env)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, env.Environ)
	if err != nil {
		return err
	}
	svc, db, closeAll, err := openAccounts(ctx, env, *cfgPath)
	if err != nil {
		return err
	}
	defer closeAll()
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tUSERNAME\tROLE\t2FA\tSTATE\tCREATED")
	after := ""
	for {
		users, err := svc.ListUsers(ctx, after, 500)
		if err != nil {
			return err
		}
		for _, u := range users {
			state, twofa := "active", "off"
			switch {
			case !u.DeletedAt.IsZero():
				// Unreadable and waiting for the purge; the username
				// is a placeholder by now.
				state = "deleted " + u.DeletedAt.UTC().Format(time.DateOnly) + ", purge due"
			case !u.DisabledAt.IsZero():
				state = "disabled"
			}
			if !u.DeletedAt.IsZero() {
				state, err = deletedState(ctx, db, u.ID, u.DeletedAt, cfg.Retention.DeletedAccounts.D())
				if err != nil {
					return err
				}
			}
			if u.TOTPEnabled {
				twofa = "on"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Username, u.Role, twofa, state, u.CreatedAt.Format(time.DateOnly))
		}
		if len(users) < 500 {
			break
		}
		after = users[len(users)-1].ID
	}
	return w.Flush()
}

func runUserDisable(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "user disable", "user disable USERNAME|EMAIL")
	cfgPath := configFlag(fs, env)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{msg: "usage: zimage user disable USERNAME|EMAIL"}
	}
	svc, _, closeAll, err := openAccounts(ctx, env, *cfgPath)
	if err != nil {
		return err
	}
	defer closeAll()
	u, err := svc.UserByLogin(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	if err := svc.SetDisabled(ctx, "", u.ID, true); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "disabled %s (id %s); its sessions are ended\n", u.Username, u.ID)
	return nil
}

// deletedState describes a deleted account that is not purged yet: the
// purge runs at the first retention run after the deletion and no later
// than the deleted-accounts window, unless a legal hold keeps it.
func deletedState(ctx context.Context, db *sqlite.DB, userID string, deletedAt time.Time, window time.Duration) (string, error) {
	_, err := db.LegalHoldOf(ctx, userID)
	switch {
	case err == nil:
		return "deleted " + deletedAt.Format(time.DateOnly) + ", kept by a legal hold", nil
	case app.ErrorCode(err) != app.ENOTFOUND:
		return "", err
	}
	return "deleted " + deletedAt.Format(time.DateOnly) + ", purge due by " + deletedAt.Add(window).Format(time.DateOnly), nil
}
