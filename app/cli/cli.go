// Package cli is the zimage command line: it parses arguments, loads the
// config and wires the packages together. main.go only calls Run.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"

	"zimage/app/config"
)

// version is set for release builds with
// -ldflags "-X zimage/app/cli.version=v1.2.3"; empty means "work out what
// this build is" from the build info.
var version = ""

// Version is the build's version, the same in the page footer, /healthz,
// the start-up log and `zimage version`.
func Version() string {
	info, _ := debug.ReadBuildInfo()
	return versionOf(version, info)
}

// pseudoVersion matches the commit part of a Go pseudo-version
// (v0.0.0-20260101120000-abcdef123456), which names no release.
var pseudoVersion = regexp.MustCompile(`\d{14}-[0-9a-f]{12}`)

// versionOf chooses, in order: the version given with -ldflags; a release
// tag the go command stamped (go build in a clean checkout at a tag);
// dev+<commit> from the stamped revision, +dirty when the checkout had
// changes; plain "dev" when nothing was stamped (go run, go test, or
// -buildvcs=false record no commit).
func versionOf(ldflags string, info *debug.BuildInfo) string {
	if ldflags != "" {
		return ldflags
	}
	if info == nil {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" && !pseudoVersion.MatchString(v) && !strings.Contains(v, "+dirty") {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	v := "dev+" + rev[:min(len(rev), 12)]
	if dirty {
		v += "+dirty"
	}
	return v
}

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2 // bad config or usage: fix the input, not the machine
)

// Env is what a command sees of the world; tests pass their own.
type Env struct {
	Stdout, Stderr io.Writer
	// Stdin feeds commands that read secrets (user create --password-stdin).
	Stdin   io.Reader
	Environ []string
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the web server (default: http://127.0.0.1:8080, data in ./data)", runServe},
		{"config", "config check FILE: validate a config file", runConfig},
		{"doctor", "check config, data folder, database and TLS, and say how to fix problems", runDoctor},
		{"backup", "backup --out DIR: online snapshot of database and media (no keys); --keyring: keyring backup", runBackup},
		{"restore", "restore --from DIR: put a backup back (server stopped)", runRestore},
		{"keys", "keys rotate: new master key, re-wrap every user key (server stopped)", runKeys},
		{"retention", "retention run [--as-of TIME] [--dry-run] | status: run the retention jobs now, or show their runs", runRetention},
		{"policy", "policy show | publish: print or publish the privacy policy rendered from the config", runPolicy},
		{"provenance", "provenance init [--force]: make the C2PA signing key and a self-signed certificate", runProvenance},
		{"user", "user create|list|disable: manage accounts (create works whatever the sign-up mode)", runUser},
		{"export", "export --user USER --out FILE: write a person's data export (decrypted ZIP) for a legal request; audited", runExport},
		{"training", "training export --out DIR: dataset of prompts and images from people who opted in to training use; audited", runTraining},
		{"mail", "mail [retry ID]: the mail outbox by state, dead letters and their last answer; retry a dead letter", runMail},
		{"audit", "audit verify: check the hash-chained audit log; exits 1 if an entry was changed or removed", runAudit},
		{"version", "print the version", runVersion},
	}
}

// Run runs the command in args (without the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return exitConfig
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return exitCode(env, c.run(ctx, env, args[1:]))
		}
	}
	fmt.Fprintf(env.Stderr, "zimage: unknown command %q; run zimage --help for the list\n", args[0])
	return exitConfig
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "zimage %s — a self-hosted image generator\n\nUsage: zimage COMMAND [options]\n\nCommands:\n", Version())
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun zimage COMMAND --help for a command's options.\n")
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// exitCode prints err on one line and picks the exit status.
func exitCode(env Env, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ces config.Errors
	var ce *config.Error
	var ue *usageError
	switch {
	case errors.As(err, &ces):
		for _, e := range ces {
			fmt.Fprintf(env.Stderr, "zimage: %v\n", e)
		}
		return exitConfig
	case errors.As(err, &ce):
		fmt.Fprintf(env.Stderr, "zimage: %v\n", ce)
		return exitConfig
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "zimage: %v\n", ue)
		return exitConfig
	}
	fmt.Fprintf(env.Stderr, "zimage: %s\n", errMessage(err))
	return exitFail
}

// newFlags returns a flag set that returns errors instead of exiting and
// prints nothing itself: parse prints the help, exitCode the one error line.
func newFlags(env Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(env.Stdout, "Usage: zimage %s\n", synopsis)
		if hasFlags(fs) {
			fmt.Fprintln(env.Stdout, "\nOptions:")
			fs.SetOutput(env.Stdout)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parse reads flags wherever they stand among the arguments: the flag
// package stops at the first argument, so `audit verify --config FILE` or
// `user disable alice --config FILE` would leave the flags unread. "--"
// still ends the flags. fs.Args() then holds the arguments alone, in order.
func parse(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return err // the flag package has printed the usage
		} else if err != nil {
			return &usageError{msg: fmt.Sprintf("%v (see zimage %s --help)", err, fs.Name())}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parsing "--" alone sets fs.Args() and leaves every flag as it is.
	return fs.Parse(append([]string{"--"}, positional...))
}

// configFlag adds --config, defaulting to $ZIMAGE_CONFIG.
func configFlag(fs *flag.FlagSet, env Env) *string {
	return fs.String("config", lookupEnv(env.Environ, "ZIMAGE_CONFIG"), "config `FILE` (TOML); default $ZIMAGE_CONFIG, else built-in defaults")
}

// flagSet reports whether name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func lookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

func runVersion(_ context.Context, env Env, args []string) error {
	fs := newFlags(env, "version", "version")
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "zimage %s\n", Version())
	return nil
}

func runConfig(_ context.Context, env Env, args []string) error {
	fs := newFlags(env, "config", "config check FILE | config check --config FILE\n\nValidates FILE (plus ZIMAGE_* environment overrides) exactly as a start would, and exits 2\nlisting every problem found.")
	cfgPath := configFlag(fs, env)
	if err := parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	path := *cfgPath
	switch {
	case len(rest) == 2 && rest[0] == "check" && !flagSet(fs, "config"):
		path = rest[1]
	case len(rest) == 1 && rest[0] == "check" && path != "":
	default:
		return &usageError{msg: "usage: zimage config check FILE"}
	}
	if _, err := config.Load(path, env.Environ); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: OK\n", path)
	return nil
}

// Main is what main.go calls.
func Main(ctx context.Context) int {
	return Run(ctx, os.Args[1:], Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Environ: os.Environ()})
}
