// Package backendfake holds in-process fakes of the model servers Z Image
// talks to. Each speaks its server's real wire format (routes, JSON shapes,
// websocket frames, odd corners) closely enough that the adapters in
// app/backend are tested against them instead of against stubs of our own
// interface, and each has knobs for the failures a real server shows.
package backendfake
