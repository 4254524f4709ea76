package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report holds every raw result of an invocation; -json writes it as is.
type Report struct {
	Meta     Meta             `json:"meta"`
	PingPong []PingPongResult `json:"ping_pong,omitempty"`
	Stream   []StreamResult   `json:"stream,omitempty"`
	Echo     []EchoResult     `json:"echo,omitempty"`
	Bulk     []BulkResult     `json:"bulk,omitempty"`
	Conn     []ConnResult     `json:"conn,omitempty"`
}

// Meta describes the conditions of the run.
type Meta struct {
	Date       string            `json:"date"`
	GoVersion  string            `json:"go_version"`
	NumCPU     int               `json:"num_cpu"`
	GOMAXPROCS int               `json:"gomaxprocs"`
	Mode       string            `json:"mode"`
	Command    string            `json:"command"`
	Duration   string            `json:"duration"`
	Warmup     string            `json:"warmup"`
	Runs       int               `json:"runs"`
	Versions   map[string]string `json:"versions"`
	LoadStart  string            `json:"loadavg_start"`
	LoadEnd    string            `json:"loadavg_end"`
}

func newReport(o options) Report {
	mode := "in-process (client and server share GOMAXPROCS)"
	if o.twoProc {
		mode = "two processes (server in a child; allocs, B and CPU per op are client-side, srv CPU/op is the child)"
	}
	vers := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/lesismal/arpc", "github.com/smallnest/rpcx", "google.golang.org/grpc", "github.com/ipcframe/ipcframe":
				vers[d.Path] = d.Version
			}
		}
	}
	return Report{Meta: Meta{
		Date:       time.Now().UTC().Format(time.RFC3339),
		GoVersion:  runtime.Version(),
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Mode:       mode,
		Command:    strings.Join(os.Args, " "),
		Duration:   o.duration.String(),
		Warmup:     o.warmup.String(),
		Runs:       o.runs,
		Versions:   vers,
		LoadStart:  loadAvg(),
	}}
}

// quietBelow is the other-CPU share under which a point counts as quiet.
const quietBelow = 0.15

// quietQPS prints the median QPS of the quiet runs and how many there were.
func quietQPS(rs []EchoResult) string {
	var q []float64
	for _, x := range rs {
		if x.OtherCPU >= 0 && x.OtherCPU < quietBelow {
			q = append(q, x.QPS)
		}
	}
	if len(q) == 0 {
		return fmt.Sprintf("- (0/%d)", len(rs))
	}
	return fmt.Sprintf("%s (%d/%d)", fmtCount(statOf(q).med), len(q), len(rs))
}

// stat is the median and range of one metric across runs.
type stat struct{ med, lo, hi float64 }

func statOf(vs []float64) stat {
	if len(vs) == 0 {
		return stat{math.NaN(), math.NaN(), math.NaN()}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{m, s[0], s[len(s)-1]}
}

func collect[T any](xs []T, f func(T) float64) stat {
	vs := make([]float64, 0, len(xs))
	for _, x := range xs {
		vs = append(vs, f(x))
	}
	return statOf(vs)
}

// fmtRange prints "med" or, with several runs, "med (lo–hi)".
func fmtRange(s stat, runs int, f func(float64) string) string {
	if runs <= 1 || s.lo == s.hi {
		return f(s.med)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.med), f(s.lo), f(s.hi))
}

func fmtUS(us float64) string {
	switch {
	case math.IsNaN(us):
		return "-"
	case us < 1000:
		return fmt.Sprintf("%.1fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

func fmtUSOrDash(us float64) string {
	if us == 0 {
		return "-"
	}
	return fmtUS(us)
}

func fmtCount(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	n := int64(math.Round(v))
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v)
}

func fmtPct(v float64) string {
	if math.IsNaN(v) || v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", v*100)
}

func fmtBytes(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// print writes the result tables: medians across runs, ranges when runs > 1.
func (r *Report) print(w io.Writer) {
	m := r.Meta
	fmt.Fprintf(w, "\n# ipcframe peer benchmark — %s\n", m.Date)
	fmt.Fprintf(w, "%s, NumCPU %d, GOMAXPROCS %d, %s; %s warm-up + %s measured per point, %d run(s)\n",
		m.GoVersion, m.NumCPU, m.GOMAXPROCS, m.Mode, m.Warmup, m.Duration, m.Runs)
	fmt.Fprintf(w, "command: %s\n", m.Command)
	fmt.Fprintf(w, "load average at start: %s; at end: %s\n", m.LoadStart, m.LoadEnd)
	fmt.Fprintln(w, "other CPU = share of all CPUs busy outside this process during the window (noise indicator).")

	pp := collect(r.PingPong, func(x PingPongResult) float64 { return x.RTPS })
	st := collect(r.Stream, func(x StreamResult) float64 { return x.GBps })
	if len(r.PingPong)+len(r.Stream) > 0 {
		fmt.Fprintf(w, "\n## Ceilings (std net, one loopback connection)\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "measurement\tresult\tp50\tp99\tp99.9\tother CPU\t")
		if len(r.PingPong) > 0 {
			fmt.Fprintf(tw, "1-byte ping-pong\t%s rt/s\t%s\t%s\t%s\t%s\t\n",
				fmtRange(pp, m.Runs, fmtCount),
				fmtUS(collect(r.PingPong, func(x PingPongResult) float64 { return x.P50US }).med),
				fmtUS(collect(r.PingPong, func(x PingPongResult) float64 { return x.P99US }).med),
				fmtUS(collect(r.PingPong, func(x PingPongResult) float64 { return x.P999US }).med),
				fmtPct(collect(r.PingPong, func(x PingPongResult) float64 { return x.OtherCPU }).med))
		}
		if len(r.Stream) > 0 {
			fmt.Fprintf(tw, "TCP stream, 64 KiB writes\t%s GB/s\t\t\t\t%s\t\n",
				fmtRange(st, m.Runs, func(v float64) string { return fmt.Sprintf("%.2f", v) }),
				fmtPct(collect(r.Stream, func(x StreamResult) float64 { return x.OtherCPU }).med))
		}
		tw.Flush()
	}

	if len(r.Echo) > 0 {
		r.printEcho(w, pp.med)
	}
	if len(r.Bulk) > 0 {
		r.printBulk(w, st.med)
	}
	if len(r.Conn) > 0 {
		r.printConn(w)
	}
}

func (r *Report) printEcho(w io.Writer, pingPong float64) {
	m := r.Meta
	size := r.Echo[0].Size
	fmt.Fprintf(w, "\n## %s echo, closed loop, one connection per peer\n\n", fmtBytes(size))
	fmt.Fprintln(w, "QPS, latency and cost are medians across runs (QPS range in parentheses when runs > 1).")
	fmt.Fprintln(w, "allocs/op, B/op and CPU/op are process-wide deltas / completed calls (client + server when in-process,")
	fmt.Fprintln(w, "client only with -twoproc, where srv CPU/op is the server child's CPU per call).")
	fmt.Fprintln(w, "vs best = QPS / best peer's QPS at the same concurrency; vs ping-pong = QPS / 1-byte ping-pong rt/s.")
	fmt.Fprintf(w, "quiet QPS = median over the runs whose other CPU was below %.0f%% (quiet runs / runs).\n", quietBelow*100)
	fmt.Fprintln(w)

	var concs []int
	var peers []string
	byKey := map[string][]EchoResult{}
	failed := map[string]string{}
	for _, e := range r.Echo {
		if !slices.Contains(concs, e.Conc) {
			concs = append(concs, e.Conc)
		}
		if !slices.Contains(peers, e.Peer) {
			peers = append(peers, e.Peer)
		}
		k := fmt.Sprint(e.Peer, "/", e.Conc)
		if e.Ops == 0 {
			failed[k] = e.Err
			continue
		}
		byKey[k] = append(byKey[k], e)
	}
	slices.Sort(concs)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "peer\tconc\tQPS\tquiet QPS\tp50\tp99\tp99.9\tmax\tallocs/op\tB/op\tCPU/op\tsrv CPU/op\tvs best\tvs ping-pong\tother CPU\t")
	for _, c := range concs {
		best := 0.0
		for _, p := range peers {
			if rs := byKey[fmt.Sprint(p, "/", c)]; len(rs) > 0 {
				best = max(best, collect(rs, func(x EchoResult) float64 { return x.QPS }).med)
			}
		}
		for _, p := range peers {
			k := fmt.Sprint(p, "/", c)
			rs := byKey[k]
			if len(rs) == 0 {
				reason := failed[k]
				if reason == "" {
					reason = "not run"
				}
				fmt.Fprintf(tw, "%s\t%d\tn/a\t\t\t\t\t\t\t\t\t\t\t\t\t  %s\n", p, c, reason)
				continue
			}
			q := collect(rs, func(x EchoResult) float64 { return x.QPS })
			med := func(f func(EchoResult) float64) float64 { return collect(rs, f).med }
			errs := 0.0
			for _, x := range rs {
				errs += float64(x.Errors)
			}
			note := ""
			if errs > 0 {
				note = fmt.Sprintf("  %d errors: %s", int(errs), rs[0].Err)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p, c,
				fmtRange(q, m.Runs, fmtCount),
				quietQPS(rs),
				fmtUS(med(func(x EchoResult) float64 { return x.P50US })),
				fmtUS(med(func(x EchoResult) float64 { return x.P99US })),
				fmtUS(med(func(x EchoResult) float64 { return x.P999US })),
				fmtUS(med(func(x EchoResult) float64 { return x.MaxUS })),
				med(func(x EchoResult) float64 { return x.AllocsPerOp }),
				fmtCount(med(func(x EchoResult) float64 { return x.BytesPerOp })),
				fmtUS(med(func(x EchoResult) float64 { return x.CPUPerOpUS })),
				fmtUSOrDash(med(func(x EchoResult) float64 { return x.ServerCPUPerOpUS })),
				fmtRatio(q.med/best),
				fmtRatio(q.med/pingPong),
				fmtPct(med(func(x EchoResult) float64 { return x.OtherCPU })),
				note)
		}
	}
	tw.Flush()
}

func (r *Report) printBulk(w io.Writer, streamGBps float64) {
	m := r.Meta
	size := r.Bulk[0].Size
	fmt.Fprintf(w, "\n## %s messages one way (acknowledged), one connection, concurrency 1\n\n", fmtBytes(size))
	fmt.Fprintln(w, "MB/s = 10^6 bytes of payload per second; per-message latency includes the ack.")
	fmt.Fprintln(w, "tcp = length-prefixed frame into a reused buffer + 9-byte ack (whole-message floor);")
	fmt.Fprintln(w, "vs stream = MB/s / TCP stream ceiling.")
	fmt.Fprintln(w)

	var peers []string
	byPeer := map[string][]BulkResult{}
	failed := map[string]string{}
	for _, b := range r.Bulk {
		if !slices.Contains(peers, b.Peer) {
			peers = append(peers, b.Peer)
		}
		if b.Messages == 0 {
			failed[b.Peer] = b.Err
			continue
		}
		byPeer[b.Peer] = append(byPeer[b.Peer], b)
	}
	tcp := math.NaN()
	if rs := byPeer["tcp"]; len(rs) > 0 {
		tcp = collect(rs, func(x BulkResult) float64 { return x.MBps }).med
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "peer\tMB/s\tmessages\tp50/msg\tmax/msg\tallocs/msg\tMB alloc/msg\tCPU/msg\tvs tcp\tvs stream\tother CPU\t")
	for _, p := range peers {
		rs := byPeer[p]
		if len(rs) == 0 {
			fmt.Fprintf(tw, "%s\tn/a\t\t\t\t\t\t\t\t\t\t  %s\n", p, failed[p])
			continue
		}
		q := collect(rs, func(x BulkResult) float64 { return x.MBps })
		med := func(f func(BulkResult) float64) float64 { return collect(rs, f).med }
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t\n", p,
			fmtRange(q, m.Runs, func(v float64) string { return fmt.Sprintf("%.0f", v) }),
			int(med(func(x BulkResult) float64 { return float64(x.Messages) })),
			fmtUS(med(func(x BulkResult) float64 { return x.P50US })),
			fmtUS(med(func(x BulkResult) float64 { return x.MaxUS })),
			med(func(x BulkResult) float64 { return x.AllocsPerOp }),
			med(func(x BulkResult) float64 { return x.BytesPerOp })/1e6,
			fmtUS(med(func(x BulkResult) float64 { return x.CPUPerOpUS })),
			fmtRatio(q.med/tcp),
			fmtRatio(q.med/(streamGBps*1000)),
			fmtPct(med(func(x BulkResult) float64 { return x.OtherCPU })))
	}
	tw.Flush()
}

// printConn prints the conn workload: per peer, full and resumed
// handshakes per second, against crypto/tls over std net in the same run.
func (r *Report) printConn(w io.Writer) {
	m := r.Meta
	fmt.Fprintf(w, "\n## New TLS connections (dial, handshake, one %s echo, close), one at a time\n\n", fmtBytes(r.Conn[0].Size))
	fmt.Fprintln(w, "conn/s = connections completed per second (medians across runs); resumed = share of handshakes that")
	fmt.Fprintln(w, "resumed a session (TLS 1.3 PSK); vs stdtls = conn/s / crypto/tls over std net in the same mode.")
	fmt.Fprintln(w)
	type key struct {
		peer   string
		resume bool
	}
	var peers []string
	byKey := map[key][]ConnResult{}
	failed := map[key]string{}
	for _, c := range r.Conn {
		if !slices.Contains(peers, c.Peer) {
			peers = append(peers, c.Peer)
		}
		k := key{c.Peer, c.Resume}
		if c.Conns == 0 {
			failed[k] = c.Err
			continue
		}
		byKey[k] = append(byKey[k], c)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "peer\thandshake\tconn/s\tp50\tp99\tresumed\tallocs/conn\tCPU/conn\tvs stdtls\tother CPU\t")
	for _, resume := range []bool{false, true} {
		mode := "full"
		if resume {
			mode = "resumed"
		}
		std := math.NaN()
		if rs := byKey[key{stdTLSName, resume}]; len(rs) > 0 {
			std = collect(rs, func(x ConnResult) float64 { return x.PerSec }).med
		}
		for _, p := range peers {
			rs := byKey[key{p, resume}]
			if len(rs) == 0 {
				if reason, ok := failed[key{p, resume}]; ok {
					fmt.Fprintf(tw, "%s\t%s\tn/a\t\t\t\t\t\t\t\t  %s\n", p, mode, reason)
				}
				continue
			}
			q := collect(rs, func(x ConnResult) float64 { return x.PerSec })
			med := func(f func(ConnResult) float64) float64 { return collect(rs, f).med }
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t\n", p, mode,
				fmtRange(q, m.Runs, func(v float64) string { return fmt.Sprintf("%.0f", v) }),
				fmtUS(med(func(x ConnResult) float64 { return x.P50US })),
				fmtUS(med(func(x ConnResult) float64 { return x.P99US })),
				fmtPct(med(func(x ConnResult) float64 { return x.ResumedShare })),
				med(func(x ConnResult) float64 { return x.AllocsPerOp }),
				fmtUS(med(func(x ConnResult) float64 { return x.CPUPerOpUS })),
				fmtRatio(q.med/std),
				fmtPct(med(func(x ConnResult) float64 { return x.OtherCPU })))
		}
	}
	tw.Flush()
}
