package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// Relay mode (-mode relay): the same loads direct and through a relay node
// (docs/relay.md) in one run, and the ratios. The relay node writes
// packets of -relay-buffer bytes (default 64 KiB: it packs many of its
// sources' chunks in one packet, docs/relay.md). It runs in a
// child process (this program with -relay-serve), so that its CPU time and
// peak RSS are its own; the server and the client are embedded. Printed:
//
//   - for each -concurrency, the -size echo load direct and through the
//     relay (the server registered on it as "bench"), one table row each,
//     and the relay/direct ratios of QPS and p50;
//   - 64 MiB one-way messages (-size if at least 1 MiB), two outstanding,
//     each acknowledged, direct and through the relay, for -duration each:
//     MB/s and the ratio, and the relay node's CPU time per GB forwarded
//     (getrusage of the child is not available while it runs: /proc's
//     utime+stime) and its peak RSS.
const ModeRelay = "relay"

// idJoin is the message that registers the sender's connection on the
// relay node under a name.
const idJoin = 4

// Join asks the relay node to register the sender's connection as Name.
type Join struct{ Name string }

// Serde lists Join's fields.
func (m *Join) Serde(v *serde.Visitor) { v.String(&m.Name) }

// relayName is the name the benchmark server registers on the relay.
const relayName = "bench"

// serveRelay runs only a relay node until SIGINT or SIGTERM, printing its
// address as the first line of stdout.
func serveRelay(listen string, o ServiceOptions, relayBuffer int, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := ipc.NewProtocol()
	ipc.MustRegister(p, idJoin, func(ctx ipc.Context, m *Join) {
		if err := ctx.Conn().RegisterRelayName(m.Name); err != nil {
			_ = ctx.Conn().CloseWithError(err)
			return
		}
		_ = ctx.Respond(m)
	})
	cfg, err := o.config(p)
	if err != nil {
		return err
	}
	cfg.Listen = listen
	cfg.Relay.Enabled = true
	cfg.BufferSize = relayBuffer
	svc, err := startLargeService(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, svc.Addr())
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	<-ctx.Done()
	stopLargeService(svc)
	return nil
}

// spawnRelay starts this program as a -relay-serve child whose packets
// are relayBuffer bytes.
func spawnRelay(o ServiceOptions, relayBuffer int, stderr io.Writer) (*child, error) {
	return spawnChild(stderr, "-relay-serve", "127.0.0.1:0", "-relay-buffer", strconv.Itoa(relayBuffer),
		"-buffer", strconv.Itoa(o.BufferSize), "-compress="+strconv.FormatBool(o.Compress))
}

// join registers svc's connection to the relay at raddr as name.
func join(svc *ipc.Service, raddr, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	_, err := ipc.Call[Join, Join](ctx, svc, raddr, &Join{Name: name}, 0)
	return err
}

// runRelay runs relay mode and writes its results to w.
func runRelay(ctx context.Context, o Options, relayBuffer int, concs []int, w io.Writer, progress io.Writer) error {
	if o.Service.TLS {
		return errors.New("-mode relay runs without -tls")
	}
	relay, err := spawnRelay(o.Service, relayBuffer, os.Stderr)
	if err != nil {
		return err
	}
	defer func() { _ = relay.stop() }()
	srv, err := StartServer("127.0.0.1:0", o.Service)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	if err := join(srv.svc, relay.addr, relayName); err != nil {
		return fmt.Errorf("registering on the relay: %w", err)
	}
	direct := Target{Addr: srv.Addr(), Local: srv}
	relayed := Target{Addr: relay.addr + "/" + relayName, Local: srv}

	o.Mode = ModeEcho
	o.Progress = progress
	var results []Result
	for _, c := range concs {
		o.Concurrency = c
		var pair [2]Result
		for i, t := range []Target{direct, relayed} {
			res, err := Run(ctx, t, o)
			if err != nil {
				return fmt.Errorf("echo c=%d via %s: %w", c, t.Addr, err)
			}
			pair[i] = res
		}
		results = append(results, pair[:]...)
		fmt.Fprintf(w, "echo %d B c=%d: relay/direct QPS %.2fx (%.0f / %.0f), p50 %d / %d µs\n",
			o.Size, c, pair[1].QPS/pair[0].QPS, pair[1].QPS, pair[0].QPS, pair[1].P50Us, pair[0].P50Us)
	}
	if err := WriteTable(w, results); err != nil {
		return err
	}

	size := int64(64 << 20)
	if o.Size >= 1<<20 {
		size = int64(o.Size)
	}
	ccfg, err := o.Service.config(newProtocol(nil))
	if err != nil {
		return err
	}
	client, err := startLargeService(ccfg)
	if err != nil {
		return err
	}
	defer stopLargeService(client)
	dmb, err := hol.OneWay(ctx, client, direct.Addr, size, 2, o.Duration, false)
	if err != nil {
		return fmt.Errorf("one way direct: %w", err)
	}
	cpu0, err := childCPU(relay.cmd.Process.Pid)
	if err != nil {
		return err
	}
	start := time.Now()
	rmb, err := hol.OneWay(ctx, client, relayed.Addr, size, 2, o.Duration, false)
	if err != nil {
		return fmt.Errorf("one way through the relay: %w", err)
	}
	elapsed := time.Since(start)
	cpu1, err := childCPU(relay.cmd.Process.Pid)
	if err != nil {
		return err
	}
	gb := rmb * elapsed.Seconds() / 1e3
	fmt.Fprintf(w, "%d MiB one way: relay %.0f MB/s, direct %.0f MB/s: %.2fx\n", size>>20, rmb, dmb, rmb/dmb)
	fmt.Fprintf(w, "relay node: %.2f CPU s per GB forwarded (%.1f GB in %.1f s, %.2f CPU s), peak RSS %s\n",
		(cpu1-cpu0).Seconds()/gb, gb, elapsed.Seconds(), (cpu1 - cpu0).Seconds(), peakRSS(relay.cmd.Process.Pid))
	return nil
}

// childCPU returns the user+system CPU time of process pid so far, from
// /proc/pid/stat (fields 14 and 15, in clock ticks of 1/100 s).
func childCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat")
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
