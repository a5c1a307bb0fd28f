package privacy

import (
	"context"
	"testing"
)

// BenchmarkAllows is the per-request cost of asking whether a person's
// data may feed analytics (objectsToAnalytics asks once per recorded
// event): the ledger (20 entries) and the restriction flag, both indexed.
func BenchmarkAllows(b *testing.B) {
	ctx := context.Background()
	w := newWorld(b)
	u := w.signup(b, "bench@example.com", "benchperson")
	for i := range 20 {
		if err := w.ctl.SetConsent(ctx, u.ID, Purposes[i%3], i%2 == 0, MethodAPI); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := w.ctl.Allows(ctx, u.ID, PurposeAnalytics); err != nil {
			b.Fatal(err)
		}
	}
}
