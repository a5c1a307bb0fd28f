package cli

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestRetentionDryRunReportsWhatTheRunDoes: on the same data, a dry run
// reports exactly what the real run then removes (accounts, files, rows
// per table), as JSON on stdout with nothing else there.
func TestRetentionDryRunReportsWhatTheRunDoes(t *testing.T) {
	dir := t.TempDir()
	f := seedDataFolder(t, dir)
	environ := []string{"ZIMAGE_SERVER_DATA_DIR=" + dir}

	report := func(args ...string) map[string]retentionJobEntry {
		t.Helper()
		code, out, errs := run(t, environ, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errs)
		}
		var res retentionRunOutput
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&res); err != nil || dec.More() {
			t.Fatalf("%v: stdout is not one JSON report (%v):\n%s", args, err, out)
		}
		jobs := map[string]retentionJobEntry{}
		for _, j := range res.Jobs {
			jobs[j.Name] = j
		}
		return jobs
	}
	dry := report("retention", "run", "--dry-run")
	real := report("retention", "run")
	after := report("retention", "run", "--dry-run")

	got := dry["deleted-accounts"]
	// Files: each image (with its variants) and each export archive.
	if want := f.leaverImages + f.leaverExports; got.Removed != 1 || got.Files != want {
		t.Errorf("dry run: deleted-accounts removes %d accounts and %d files, want 1 and %d", got.Removed, got.Files, want)
	}
	for name, d := range dry {
		r := real[name]
		d.Error, r.Error = "", ""
		if !reflect.DeepEqual(d, r) {
			t.Errorf("job %s: dry run reported %+v, the real run did %+v", name, d, r)
		}
	}
	if a := after["deleted-accounts"]; a.Removed != 0 || a.Files != 0 || len(a.Details) != 0 {
		t.Errorf("after the run, a dry run still finds %+v", a)
	}
}
