package media

import (
	"os"
	"strings"
	"testing"

	"zimage/app"
)

// A full disk must reach the person as "the disk is full", not as an
// anonymous internal error. /dev/full makes every write fail with ENOSPC,
// as a real full file system does.
func TestDiskFullIsExplained(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("this test needs /dev/full: %v", err)
	}
	defer f.Close()
	_, werr := f.Write([]byte("image bytes"))
	if werr == nil {
		t.Fatal("writing to /dev/full succeeded")
	}
	err = diskError(werr)
	if app.ErrorCode(err) != app.EUNAVAILABLE || !strings.Contains(app.ErrorMessage(err), "disk is full") {
		t.Errorf("full disk reported as %v (%q)", app.ErrorCode(err), app.ErrorMessage(err))
	}
	if other := diskError(os.ErrClosed); app.ErrorCode(other) != app.EINTERNAL {
		t.Errorf("an unrelated error became %v", app.ErrorCode(other))
	}
}
