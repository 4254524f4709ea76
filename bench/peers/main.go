// Command peers is ipcframe's peer-comparison benchmark: one harness that runs
// ipcframe and its Go peers (arpc, rpcx, grpc-go, net/rpc) behind the same
// closed-loop driver, on one connection each, next to std-net ceilings
// measured in the same run.
//
// Workloads (see /work/shared/design/peers-and-benchmarks.md §4 and §5):
//
//   - ceil: 1-byte ping-pong and a 64 KiB-write TCP stream on one connection.
//   - echo: -size byte echo, closed loop, at each -conc, one connection.
//   - bulk: -bulk byte messages one way (acknowledged) on one connection.
//   - hol: -size byte calls at each -conc beside 16 MiB messages on the
//     same connection (hol.go); not in the default -workloads.
//   - conn: new TLS connections, each with one -size echo, full and
//     resumed handshakes, for the TLS peers and crypto/tls over std net
//     (conn.go); not in the default -workloads.
//
// The TLS variants ipcframe-tls and grpc-tls (shared certificates made at
// run time, tlscert.go) run only when named in -peers.
//
// Usage, from the repository root:
//
//	go run ./bench/peers -duration 3s -runs 3 -json /tmp/peers.json
//	go run ./bench/peers -twoproc -peers arpc,ipcframe
//
// ipcframe joins when built with -tags ipcframe (see ipcframe.go).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type options struct {
	duration, warmup time.Duration
	size, bulk, runs int
	conc             []int
	peers            string
	workloads        map[string]bool
	jsonPath         string
	htmlPath         string
	twoProc          bool
	idleWait         time.Duration
	idleBelow        float64
}

func main() {
	var (
		o         options
		concFlag  string
		workloads string
		serve     string
		addr      string
		reprint   string
	)
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per point")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up time per point, not measured")
	flag.IntVar(&o.size, "size", 1024, "echo payload size in bytes")
	flag.StringVar(&concFlag, "conc", "1,64,1024", "comma-separated echo concurrency levels (goroutines)")
	flag.StringVar(&o.peers, "peers", "all", "comma-separated peers, or all")
	flag.IntVar(&o.bulk, "bulk", 64<<20, "bulk message size in bytes")
	flag.StringVar(&workloads, "workloads", "ceil,echo,bulk", "comma-separated workloads: ceil, echo, bulk, hol, conn")
	flag.StringVar(&o.jsonPath, "json", "", "write all raw results as JSON to this file")
	flag.IntVar(&o.runs, "runs", 1, "repeat the whole sequence this many times (medians are reported)")
	flag.BoolVar(&o.twoProc, "twoproc", false, "run each server in a child process")
	flag.DurationVar(&o.idleWait, "idlewait", 0, "before each point, wait up to this long for the machine's CPUs to be less busy than -idlebelow (shared machines)")
	flag.Float64Var(&o.idleBelow, "idlebelow", 0.15, "CPU share (0..1) that counts as idle for -idlewait")
	flag.StringVar(&reprint, "report", "", "print the tables of a file written by -json, and exit")
	flag.StringVar(&o.htmlPath, "html", "", "write a self-contained HTML report with charts to this file (with -report: of that file)")
	flag.StringVar(&serve, "serve", "", "internal: run the named server (child of -twoproc)")
	flag.StringVar(&addr, "addr", "127.0.0.1:0", "internal: listen address for -serve")
	flag.Parse()

	if serve != "" {
		if err := serveChild(serve, addr); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		return
	}

	if reprint != "" {
		var rep Report
		b, err := os.ReadFile(reprint)
		if err == nil {
			err = json.Unmarshal(b, &rep)
		}
		if err != nil {
			fatalf("-report: %v", err)
		}
		rep.print(os.Stdout)
		if o.htmlPath != "" {
			if err := rep.writeHTML(o.htmlPath); err != nil {
				fatalf("%v", err)
			}
		}
		return
	}

	var err error
	if o.conc, err = parseInts(concFlag); err != nil {
		fatalf("-conc: %v", err)
	}
	o.workloads = map[string]bool{}
	for _, w := range strings.Split(workloads, ",") {
		switch w = strings.TrimSpace(w); w {
		case "ceil", "echo", "bulk", "hol", "conn":
			o.workloads[w] = true
		case "":
		default:
			fatalf("-workloads: unknown %q", w)
		}
	}
	if o.runs < 1 || o.size < 1 || o.bulk < 1 {
		fatalf("-runs, -size and -bulk must be positive")
	}
	sys, err := selectSystems(o.peers)
	if err != nil {
		fatalf("-peers: %v", err)
	}

	rep := newReport(o)
	for run := 1; run <= o.runs; run++ {
		runOnce(&rep, o, sys, run)
	}
	rep.Meta.LoadEnd = loadAvg()
	rep.print(os.Stdout)
	if o.jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(o.jsonPath, b, 0o644)
		}
		if err != nil {
			fatalf("-json: %v", err)
		}
	}
	if o.htmlPath != "" {
		if err := rep.writeHTML(o.htmlPath); err != nil {
			fatalf("%v", err)
		}
	}
}

// runOnce measures every selected point once, logging progress to stderr.
// Servers start afresh for each point.
func runOnce(rep *Report, o options, sys []System, run int) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[run %d/%d] "+format+"\n", append([]any{run, o.runs}, args...)...)
	}
	settle := func() {
		if o.idleWait > 0 {
			if busy := waitIdle(o.idleWait, o.idleBelow); busy >= o.idleBelow {
				logf("machine still %.0f%% busy after waiting %v; measuring anyway", busy*100, o.idleWait)
			}
		}
	}
	if o.workloads["ceil"] {
		settle()
		pp, err := withServer("pingpong", o.twoProc, func(s *runningServer) (PingPongResult, error) {
			return runPingPong(s.addr, o.warmup, o.duration)
		})
		if err != nil {
			logf("ping-pong ceiling: %v", err)
		} else {
			pp.Run = run
			rep.PingPong = append(rep.PingPong, pp)
			logf("ping-pong: %.0f rt/s p50 %s", pp.RTPS, fmtUS(pp.P50US))
		}
		settle()
		st, err := withServer("stream", o.twoProc, func(s *runningServer) (StreamResult, error) {
			return runStream(s.addr, o.warmup, o.duration, s.count)
		})
		if err != nil {
			logf("stream ceiling: %v", err)
		} else {
			st.Run = run
			rep.Stream = append(rep.Stream, st)
			logf("stream: %.2f GB/s", st.GBps)
		}
	}
	if o.workloads["echo"] {
		payload := randomPayload(o.size)
		for _, c := range o.conc {
			for _, s := range sys {
				if _, ok := s.(bulkOnly); ok {
					continue
				}
				settle()
				r, err := withClient(s, o.twoProc, func(cl Client) (EchoResult, error) {
					return runEcho(cl, c, payload, o.warmup, o.duration)
				})
				r.Peer, r.Conc, r.Size, r.Run = s.Name(), c, o.size, run
				if err != nil {
					r.Err = err.Error()
					logf("echo %s c=%d: %v", s.Name(), c, err)
				} else {
					logf("echo %s c=%d: %.0f QPS p50 %s p99 %s, %.1f allocs/op", s.Name(), c, r.QPS, fmtUS(r.P50US), fmtUS(r.P99US), r.AllocsPerOp)
				}
				rep.Echo = append(rep.Echo, r)
			}
		}
	}
	if o.workloads["hol"] {
		for _, s := range sys {
			if _, ok := s.(bulkOnly); !ok {
				runHOL(s, o, settle, logf) // hol.go
			}
		}
	}
	if o.workloads["conn"] {
		runConns(rep, o, sys, run, settle, logf) // conn.go
	}
	if o.workloads["bulk"] {
		payload := randomPayload(o.bulk)
		for _, s := range sys {
			settle()
			r, err := withClient(s, o.twoProc, func(cl Client) (BulkResult, error) {
				return runBulk(cl, payload, o.warmup, o.duration)
			})
			r.Peer, r.Size, r.Run = s.Name(), o.bulk, run
			if err != nil {
				r.Err = err.Error()
				logf("bulk %s: %v", s.Name(), err)
			} else {
				logf("bulk %s: %.0f MB/s (%d messages)", s.Name(), r.MBps, r.Messages)
			}
			rep.Bulk = append(rep.Bulk, r)
		}
	}
}

// withServer starts the named server, runs f against it and stops it.
func withServer[R any](name string, twoProc bool, f func(*runningServer) (R, error)) (R, error) {
	var zero R
	s, err := startServer(name, twoProc)
	if err != nil {
		return zero, err
	}
	defer s.stop()
	return f(s)
}

// withClient starts sys's server, dials one client, runs f and tears both down.
func withClient[R any](sys System, twoProc bool, f func(Client) (R, error)) (R, error) {
	r, err := withServer(sys.Name(), twoProc, func(s *runningServer) (R, error) {
		var zero R
		c, err := sys.Dial(s.addr)
		if err != nil {
			return zero, fmt.Errorf("dial: %w", err)
		}
		defer c.Close()
		return f(c)
	})
	runtime.GC()
	return r, err
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad value %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "peers: "+format+"\n", args...)
	os.Exit(2)
}
