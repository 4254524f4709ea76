package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// Large-message modes. They run an embedded server and client with plain
// message types (no ipc.Recyclable) and a zero Config apart from size
// limits and -buffer, and print one line per measurement:
//
//	hol     1 KiB calls (-size) at each -concurrency from their own
//	        goroutines, idle and beside 16 MiB messages on the same
//	        connection (echoed, then one way); the bulk flow alone and
//	        beside the calls; the same-run ratios
//	bulk    64 MiB one-way messages (-size if at least 1 MiB) with a []byte
//	        field, two outstanding, each acknowledged; beside a raw TCP
//	        stream measured in the same run
//	stream  the same with the payload as a stream field generated on the
//	        fly and checked by a running CRC-32C on receipt (a cheap
//	        integrity check, internal/hol); also beside a raw TCP stream
//	        that generates and hashes its bytes the same way
//
// bulk and stream first warm the heap (heapwarm.go: the workload in 250 ms
// windows until two in a row fault in under 1/16 of the pages they move,
// at most 10 s) and print the warm-up, which the numbers exclude. They
// also take -twoproc (the server in a child process; both
// peak RSS are printed); a -size above 1 GiB sends one message and reports
// its own rate, e.g. -mode stream -size 107374182400 -twoproc for 100 GiB.
const (
	ModeHOL    = "hol"
	ModeBulk   = "bulk"
	ModeStream = "stream"
)

// isLargeMode reports whether mode is run by runLarge.
func isLargeMode(mode string) bool {
	return mode == ModeHOL || mode == ModeBulk || mode == ModeStream
}

// runLarge runs a large-message mode and writes its lines to w. With
// twoproc (bulk and stream only) the server is a child process and both
// processes' peak RSS is reported.
func runLarge(ctx context.Context, o Options, concs []int, twoproc bool, w io.Writer) error {
	lim := serde.Limits{MaxString: maxBody}
	cp := hol.ClientProtocol()
	hol.RegisterBulk(cp, false)
	client, err := startLargeService(ipc.Config{Protocol: cp, Limits: lim, BufferSize: o.Service.BufferSize})
	if err != nil {
		return err
	}
	defer stopLargeService(client)
	var addr string
	var serverPID int
	switch {
	case twoproc && o.Mode == ModeHOL:
		return errors.New("-mode hol runs embedded only")
	case twoproc:
		c, err := spawnServer(o.Service, os.Stderr)
		if err != nil {
			return err
		}
		defer func() { _ = c.stop() }()
		addr, serverPID = c.addr, c.cmd.Process.Pid
	default:
		sp := hol.ServerProtocol()
		hol.RegisterBulk(sp, true)
		server, err := startLargeService(ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", Limits: lim, BufferSize: o.Service.BufferSize})
		if err != nil {
			return err
		}
		defer stopLargeService(server)
		addr = server.Addr().String()
	}

	if o.Mode == ModeHOL {
		for _, c := range concs {
			for _, echo := range []bool{true, false} {
				res, err := hol.Run(ctx, &hol.IPC{Svc: client, Addr: addr, BulkEcho: echo},
					hol.Options{SmallSize: o.Size, Concurrency: c, BulkEcho: echo, Window: o.Duration})
				if err != nil {
					return err
				}
				fmt.Fprintln(w, res)
			}
		}
		return nil
	}
	size := int64(64 << 20)
	if o.Size >= 1<<20 {
		size = int64(o.Size)
	}
	stream := o.Mode == ModeStream
	pids := []int{os.Getpid()}
	if serverPID != 0 {
		pids = append(pids, serverPID)
	}
	rawMeter := startWindowMeter(pids[:1])
	raw, rawWork, err := rawReference(ctx, o.Duration, stream)
	if err != nil {
		return err
	}
	rawCost := rawMeter.cost()
	var mb float64
	var warm warmResult
	var cost windowCost
	if size > 1<<30 {
		// One message larger than the window: its own rate.
		start := time.Now()
		if err := hol.SendLarge(ctx, client, addr, size, nil, stream); err != nil {
			return err
		}
		mb = float64(size) / time.Since(start).Seconds() / 1e6
	} else {
		var payload []byte
		if !stream {
			payload = make([]byte, size)
			_, _ = hol.NewPatternReader(size).Read(payload)
		}
		if warm, err = heapWarm(ctx, client, addr, size, payload, stream, pids); err != nil { // heapwarm.go
			return err
		}
		meter := startWindowMeter(pids)
		if mb, err = hol.OneWayPayload(ctx, client, addr, size, payload, 2, o.Duration, stream); err != nil {
			return err
		}
		cost = meter.cost()
	}
	raw2, rawWork2, err := rawReference(ctx, o.Duration, stream)
	if err != nil {
		return err
	}
	ref := (raw + raw2) / 2
	fmt.Fprintf(w, "%s %d MiB one way: ipcframe %.0f MB/s, raw TCP stream %.0f MB/s (before %.0f, after %.0f): %.2fx\n",
		o.Mode, size>>20, mb, ref, raw, raw2, mb/ref)
	if stream {
		// The stream workload generates and hashes every byte on both
		// sides; the same work over raw TCP is the ceiling for the
		// engine's own overhead.
		ref := (rawWork + rawWork2) / 2
		fmt.Fprintf(w, "%s %d MiB one way: raw TCP with the same source and sink %.0f MB/s (before %.0f, after %.0f): %.2fx\n",
			o.Mode, size>>20, ref, rawWork, rawWork2, mb/ref)
	}
	if cost.elapsed > 0 {
		// windowmeter.go; the raw CPU is the first reference's (for a
		// stream, its plain and its working stream, two windows).
		rawRate := raw
		if stream {
			rawRate = (raw + rawWork) / 2
		}
		fmt.Fprintf(w, "%s window cost: ipcframe %.0f CPU-ms/GB, raw TCP %.0f CPU-ms/GB; %s\n",
			o.Mode, cost.cpuPerGB(mb), rawCost.cpuPerGB(rawRate), cost.perMessage(mb, size))
	}
	if warm.windows > 0 {
		fmt.Fprintln(w, warm)
	}
	fmt.Fprintf(w, "peak RSS: this process %s", peakRSS(os.Getpid()))
	if serverPID != 0 {
		fmt.Fprintf(w, ", server process %s", peakRSS(serverPID))
	}
	fmt.Fprintln(w)
	return nil
}

// rawReference measures the raw TCP stream the engine is compared with
// (64 KiB writes and reads) and, with work set, the same stream carrying
// the stream workload's generated and hashed payload.
func rawReference(ctx context.Context, dur time.Duration, work bool) (raw, rawWork float64, err error) {
	if raw, err = hol.RawTCP(ctx, 64<<10, dur, false); err != nil {
		return 0, 0, fmt.Errorf("raw TCP: %w", err)
	}
	if work {
		if rawWork, err = hol.RawTCP(ctx, 64<<10, dur, true); err != nil {
			return 0, 0, fmt.Errorf("raw TCP: %w", err)
		}
	}
	return raw, rawWork, nil
}

// peakRSS returns the VmHWM line of /proc/pid/status, or "unknown".
func peakRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func startLargeService(cfg ipc.Config) (*ipc.Service, error) {
	s, err := ipc.NewService(cfg)
	if err != nil {
		return nil, err
	}
	return s, s.Start()
}

func stopLargeService(s *ipc.Service) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	_ = s.Stop(ctx)
}
