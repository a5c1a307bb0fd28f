package cli

import (
	"strings"
	"testing"
	"time"
)

// TestUserListShowsDeletedAccounts: an account deleted but not purged yet
// is listed as deleted with the date its purge is due, never as active.
func TestUserListShowsDeletedAccounts(t *testing.T) {
	dir := t.TempDir()
	f := seedDataFolder(t, dir)
	code, out, errs := run(t, []string{"ZIMAGE_SERVER_DATA_DIR=" + dir}, "user", "list")
	if code != 0 {
		t.Fatalf("user list: exit %d: %s", code, errs)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if id, _, ok := strings.Cut(l, " "); ok {
			lines[id] = l
		}
	}
	today := time.Now().UTC()
	tests := []struct {
		name, id, want string
	}{
		{"live account", f.stayerID, " active "},
		{"deleted account", f.leaverID, "deleted " + today.Format(time.DateOnly) + ", purge due by " + today.Add(30*24*time.Hour).Format(time.DateOnly)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if l := lines[tt.id]; !strings.Contains(l, tt.want) || (tt.id == f.leaverID && strings.Contains(l, "active")) {
				t.Errorf("user list line %q, want it to say %q\n%s", l, tt.want, out)
			}
		})
	}
}
