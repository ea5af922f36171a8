package server

import (
	"context"
	"strconv"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/carbuild/carbuild/catalog/catalogclient"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
)

// RevisionHeader is the gRPC header metadata key every read method answers
// with (catalogclient.Header, the contract's clients read it there).
const RevisionHeader = catalogclient.Header

// Revisions is the catalog revision as this instance knows it (the cache's).
type Revisions interface {
	// Revision returns the revision and whether it is live (changes are
	// being seen); data read after the call is at least that new. It is
	// called on every read and must be cheap.
	Revision() (rev int64, live bool)
	// Watch returns the revision, whether it is live, and a channel closed
	// at the next change of either.
	Watch() (rev int64, live bool, changed <-chan struct{})
}

// revisionHeader sets RevisionHeader on read calls. The metadata of the
// current revision is built once and shared: gRPC copies it on SetHeader.
type revisionHeader struct {
	src  Revisions // nil: no revision, no header
	last atomic.Pointer[revisionMD]
}

type revisionMD struct {
	rev int64
	md  metadata.MD
}

// set sets the header of the call in ctx to the revision known now, when it
// is live. Handlers call it first, so it is the revision at call start.
func (h *revisionHeader) set(ctx context.Context) {
	if h.src == nil {
		return
	}
	rev, live := h.src.Revision()
	if !live {
		return
	}
	m := h.last.Load()
	if m == nil || m.rev != rev {
		m = &revisionMD{rev: rev, md: metadata.MD{RevisionHeader: []string{strconv.FormatInt(rev, 10)}}}
		h.last.Store(m)
	}
	// It fails only without a gRPC stream in ctx (a handler called
	// directly): there is then no header to set.
	_ = grpc.SetHeader(ctx, m.md)
}

// WatchRevision streams the catalog revision: the current state at once, then
// one message whenever the revision or its liveness changes (changes faster
// than the client reads are coalesced into the latest state). The stream
// ends with OK when the server starts draining, and with CANCELLED when the
// client goes away. Without a revision source (cache off) it sends
// {revision 0, live false} and nothing more.
func (s *V1) WatchRevision(_ *catalogv1.WatchRevisionRequest, stream grpc.ServerStreamingServer[catalogv1.CatalogRevision]) error {
	ctx := stream.Context()
	var sent *catalogv1.CatalogRevision
	for {
		var rev int64
		var live bool
		var changed <-chan struct{}
		if s.rev.src != nil {
			rev, live, changed = s.rev.src.Watch()
		}
		if sent == nil || sent.GetRevision() != rev || sent.GetLive() != live {
			msg := &catalogv1.CatalogRevision{Revision: rev, Live: live}
			if err := stream.Send(msg); err != nil {
				return err
			}
			sent = msg
		}
		select {
		case <-changed: // nil without a source: never
		case <-s.draining:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
