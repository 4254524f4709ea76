package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is the outcome of one run. Rates cover the measured window only;
// MB is 10^6 bytes.
type Result struct {
	Mode        string  `json:"mode"`
	Size        int     `json:"size"`
	Concurrency int     `json:"concurrency"`
	Conns       int     `json:"conns"`
	BufferSize  int     `json:"buffer_size"`
	Compress    bool    `json:"compress"`
	TLS         bool    `json:"tls"`
	Embedded    bool    `json:"embedded"` // server in this process (allocations count both sides)
	Seconds     float64 `json:"seconds"`  // measured window
	// Requests is the number of completions in the window: echoed requests,
	// or one-way messages written to the socket.
	Requests int64 `json:"requests"`
	// Errors counts failed sends over the whole run (warm-up and drain
	// included).
	Errors int64 `json:"errors"`
	// QPS is Requests per second.
	QPS float64 `json:"qps"`
	// MBps is payload MB/s per direction in echo mode, and the server's
	// received payload MB/s in oneway mode.
	MBps float64 `json:"mb_per_sec"`
	// Latencies in microseconds: request round trip (echo), or send to
	// written (oneway).
	P50Us  int64   `json:"p50_us"`
	P99Us  int64   `json:"p99_us"`
	P999Us int64   `json:"p999_us"`
	MaxUs  int64   `json:"max_us"`
	MeanUs float64 `json:"mean_us"`
	// AllocsPerReq is the Go heap allocations (runtime.MemStats.Mallocs) of
	// the process during the window per request.
	AllocsPerReq float64 `json:"allocs_per_request"`
	// CPUPerReqUs is the process's CPU time (user + system, getrusage)
	// during the window per request, in microseconds: client and server
	// when the server is embedded, the client's otherwise. Busy polling
	// shows here: it buys latency with CPU.
	CPUPerReqUs float64 `json:"cpu_us_per_request"`
	// Timeline samples the window (timeline.go); Histogram is the
	// window's latency distribution in 1-2-5 bars.
	Timeline  []Sample `json:"timeline,omitempty"`
	Histogram []Bucket `json:"histogram,omitempty"`
	// ServerBytes and ServerMsgs are what the server received during the
	// window (oneway mode).
	ServerBytes uint64 `json:"server_bytes,omitempty"`
	ServerMsgs  uint64 `json:"server_msgs,omitempty"`
	// Stalled is the number of requests that had not completed when the
	// drain timeout expired (0 when all completed).
	Stalled    int64  `json:"stalled,omitempty"`
	FirstError string `json:"first_error,omitempty"`
}

func (r *Result) setLatency(h *hdrhistogram.Histogram) {
	if h.TotalCount() == 0 {
		return
	}
	r.P50Us = h.ValueAtQuantile(50)
	r.P99Us = h.ValueAtQuantile(99)
	r.P999Us = h.ValueAtQuantile(99.9)
	r.MaxUs = h.Max()
	r.MeanUs = h.Mean()
}

// tableColumns are the headers of the result table.
var tableColumns = []string{
	"mode", "size", "conc", "conns", "QPS", "MB/s", "p50", "p99", "p99.9", "max", "requests", "errors", "allocs/req", "CPU/req",
}

// WriteTable writes results as an aligned table, one row per result.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, c := range tableColumns {
		fmt.Fprintf(tw, "%s\t", c)
	}
	fmt.Fprintln(tw)
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t%d\t%d\t%.2f\t%.1fµs\t\n",
			r.Mode, sizeString(r.Size), r.Concurrency, r.Conns, r.QPS, r.MBps,
			us(r.P50Us), us(r.P99Us), us(r.P999Us), us(r.MaxUs),
			r.Requests, r.Errors, r.AllocsPerReq, r.CPUPerReqUs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "c=%d: first error: %s\n", r.Concurrency, r.FirstError)
		}
		if r.Stalled > 0 {
			fmt.Fprintf(w, "c=%d: %d %s never completed\n", r.Concurrency, r.Stalled, unit(r.Mode))
		}
	}
	return nil
}

// us formats a microsecond latency with a unit.
func us(v int64) string {
	switch {
	case v >= 10_000_000:
		return fmt.Sprintf("%.1fs", float64(v)/1e6)
	case v >= 10_000:
		return fmt.Sprintf("%.1fms", float64(v)/1e3)
	default:
		return fmt.Sprintf("%dµs", v)
	}
}

func sizeString(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	default:
		return fmt.Sprintf("%dB", n)
	}
}

// WriteJSON writes results as an indented JSON array to path, or to stdout
// when path is "-".
func WriteJSON(path string, stdout io.Writer, results []Result) error {
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
