package cli

import (
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestVersionOf(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	stamped := func(mainVersion string, settings ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "zimage", Version: mainVersion}, Settings: settings}
	}
	tests := []struct {
		name    string
		ldflags string
		info    *debug.BuildInfo
		want    string
	}{
		{"ldflags wins", "v1.2.3", stamped("v1.0.0", debug.BuildSetting{Key: "vcs.revision", Value: rev}), "v1.2.3"},
		{"no build info", "", nil, "dev"},
		{"go run or go test: nothing stamped", "", stamped("(devel)"), "dev"},
		{"go build, clean checkout, no tag", "", stamped("v0.0.0-20261206164355-0123456789ab",
			debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "false"}), "dev+0123456789ab"},
		{"go build with local changes", "", stamped("v0.0.0-20261206164355-0123456789ab+dirty",
			debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "true"}), "dev+0123456789ab+dirty"},
		{"go build at a release tag", "", stamped("v1.4.0",
			debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "false"}), "v1.4.0"},
		{"commits after a tag", "", stamped("v1.4.1-0.20261206164355-0123456789ab",
			debug.BuildSetting{Key: "vcs.revision", Value: rev}), "dev+0123456789ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(tt.ldflags, tt.info); got != tt.want {
				t.Errorf("versionOf(%q, …) = %q, want %q", tt.ldflags, got, tt.want)
			}
		})
	}
}

// TestVersionFooterMatchesCommand: the page footer and `zimage version`
// name the same build.
func TestVersionFooterMatchesCommand(t *testing.T) {
	old := version
	version = "v9.8.7-test"
	t.Cleanup(func() { version = old })

	code, out, _ := run(t, nil, "version")
	if code != 0 || strings.TrimSpace(out) != "zimage v9.8.7-test" {
		t.Fatalf("zimage version: exit %d, %q; want \"zimage v9.8.7-test\"", code, out)
	}
	s := startServe(t, testConfig(t), 30*time.Second, nil)
	resp, err := http.Get("http://" + s.addrs["http"] + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "Z Image v9.8.7-test"; !strings.Contains(string(body), want) {
		t.Errorf("the login page's footer does not say %q:\n%.2000s", want, body)
	}
}
