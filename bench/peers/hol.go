package main

import (
	"context"
	"time"

	"github.com/ipcframe/ipcframe/internal/hol"
)

// The head-of-line workload (internal/hol, shared with ipcframe's own
// benchmarks): -size byte calls at each -conc from their own goroutines,
// idle and beside 16 MiB messages on the same connection (echoed through
// Call, then one way through Sink), and the bulk flow alone and beside the
// calls; the same-run ratios are the comparison.

// holClient adapts a peer's Client to hol.Client.
type holClient struct {
	c    Client
	echo bool
}

func (h holClient) Small(ctx context.Context, p []byte) error {
	_, err := h.c.Call(ctx, p)
	return err
}

func (h holClient) Bulk(ctx context.Context, p []byte) error {
	if h.echo {
		_, err := h.c.Call(ctx, p)
		return err
	}
	return h.c.Sink(ctx, p)
}

// runHOL runs the head-of-line workload for one peer and logs each result.
func runHOL(sys System, o options, settle func(), logf func(string, ...any)) {
	for _, c := range o.conc {
		for _, echo := range []bool{true, false} {
			settle()
			r, err := withClient(sys, o.twoProc, func(cl Client) (hol.Result, error) {
				return hol.Run(context.Background(), holClient{cl, echo},
					hol.Options{SmallSize: o.size, Concurrency: c, BulkEcho: echo, Window: max(o.duration, time.Second)})
			})
			if err != nil {
				logf("hol %s c=%d: %v", sys.Name(), c, err)
				continue
			}
			logf("hol %s %s", sys.Name(), r)
		}
	}
}
