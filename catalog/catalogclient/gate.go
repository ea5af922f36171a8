package catalogclient

// gate is the rule every cache of catalog data follows, in one place. A
// Cache keeps a gate beside its entries and calls it under the same lock
// (a gate is not safe for concurrent use on its own):
//
//   - entries are served only while the watch stream is up and the catalog
//     sees changes (Live);
//   - an answer read from the catalog is kept only if its revision is at
//     least the revision last watched and no watch event arrived while it
//     was being read (Keep, with the Epoch read when the read began): an
//     instance that has not seen a change yet can't plant an older answer
//     after another one reported it;
//   - a new revision or live=false drops every entry (Observe says so); a
//     lost stream stops serving at once, and the entries come back only if
//     the stream returns at the same revision (no committed change: the
//     catalog recycles connections every 30-40 s).
type gate struct {
	live  bool
	rev   int64
	epoch uint64 // bumped by every watch message and stream loss
}

// Observe applies one message of the watch stream and reports whether the
// cache must drop its entries.
func (g *gate) Observe(revision int64, live bool) (drop bool) {
	g.epoch++
	drop = !live || revision != g.rev
	g.rev, g.live = revision, live
	return drop
}

// Lost records that the watch stream ended: nothing is served or kept until
// a message arrives again.
func (g *gate) Lost() {
	g.epoch++
	g.live = false
}

// Live reports whether entries may be served.
func (g *gate) Live() bool { return g.live }

// Epoch identifies the watch state; read it when a read from the catalog
// begins and pass it to Keep.
func (g *gate) Epoch() uint64 { return g.epoch }

// Keep reports whether an answer of the given revision, whose read began at
// epoch, may be stored.
func (g *gate) Keep(revision int64, epoch uint64) bool {
	return g.live && g.epoch == epoch && revision >= g.rev
}
