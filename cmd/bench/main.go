// Command bench is the load generator of ipcframe.
//
// With no flags it runs the demo: an embedded server and client on loopback
// (127.0.0.1:0), a 1 KiB echo load for 10 s after a 1 s warm-up, a live
// progress bar on stderr, then a result table: QPS, payload MB/s per
// direction (MB = 10^6 bytes), p50/p99/p99.9/max round-trip latency (HDR
// histogram, microseconds, every request recorded), requests, errors, Go
// heap allocations and process CPU time (getrusage) per request.
//
// The load is a closed loop: -concurrency requests are outstanding, and each
// completion callback records its latency and issues the next request.
//
// Flags:
//
//	-size N          payload bytes per message (default 1024)
//	-concurrency L   outstanding requests; a list "1,64,1024" runs each in
//	                 turn, one table row per value (default 64)
//	-conns N         pool connections, Config.MaxActiveConnections (default 1)
//	-duration D      measured window per run (default 10s)
//	-warmup D        unmeasured time before each window (default 1s)
//	-json PATH       also write the results as JSON to PATH, "-" for stdout
//	                 (the table then goes to stderr)
//	-html PATH       also write a self-contained HTML report with charts:
//	                 QPS and CPU per request of each run; throughput,
//	                 latency percentiles and CPU per request over time;
//	                 a latency histogram (opens offline)
//	-h               print the flags and exit 0
//	-buffer N        ipc Config.BufferSize; 0 means the default, 4 KiB
//	-compress        snappy per-packet compression (on/off, default off)
//	-tls             TLS 1.3 on both sides (on/off, default off) with a
//	                 certificate made at run time (ECDSA P-256 for
//	                 localhost and 127.0.0.1): the embedded demo and
//	                 -twoproc verify it, a client with -addr does not;
//	                 echo and oneway modes only
//	-mode M          echo: request/response round trips; oneway: one-way
//	                 messages, reporting the server's received MB/s and the
//	                 rate of sends written (e.g. -mode oneway
//	                 -size 67108864 -concurrency 1 for 64 MiB messages)
//	-mode hol|bulk|stream
//	                 the large-message workloads: small calls beside 16 MiB
//	                 messages, 64 MiB one-way messages, a stream field;
//	                 plain message types, embedded server (large.go)
//	-mode relay      the echo load at each -concurrency and 64 MiB one-way
//	                 messages, direct and through a relay node in a child
//	                 process, in one run: the ratios, and the relay's CPU
//	                 time per GB forwarded and peak RSS (relay.go)
//	-relay-buffer N  the relay node's BufferSize (default 65536)
//	-relay-oneway N  the one-way message size of -mode relay (default 64 MiB;
//	                 K, M, G suffixes, powers of 1024)
//	-relay-stream N  -mode relay also streams one message of N bytes (K, M,
//	                 G suffixes) through the relay, sampling the relay
//	                 node's RSS every second: peak RSS and CPU per GB
//	-relay-floor     -mode relay also streams raw TCP direct and through a
//	                 forwarder in the relay node's process (read/write, and
//	                 splice): the kernel's floor for a relay, same run
//	-relay-cpuprofile PATH
//	                 write a CPU profile of the relay node (-mode relay)
//	-relay-serve ADDR
//	                 run only a relay node on ADDR (used by -mode relay)
//	-serve ADDR      run only the server on ADDR until SIGINT/SIGTERM
//	                 (graceful Stop); prints its address as the first
//	                 line of stdout
//	-addr HOST:PORT  run only the client, against a -serve server
//	-twoproc         run the server as a child process (-serve 127.0.0.1:0)
//	                 and the client in this one; the child is stopped at
//	                 the end
//	-quiet           no progress bar
//	-cpuprofile PATH write a CPU profile of the run (go tool pprof)
//	-trace PATH      write an execution trace of the run (go tool trace)
//
// Client and server must agree on -buffer, -compress and -tls. In the
// embedded demo allocations per request count both sides; with -addr or
// -twoproc only the client's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(exitCode(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// exitCode returns the process's exit status for run's error: 0 for none
// and for -h (help asked for is not a failure), 1 otherwise, after
// printing the error.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
}

// modes are the values of -mode, for its help and its check.
var modes = []string{ModeEcho, ModeOneway, ModeHOL, ModeBulk, ModeStream, ModeRelay}

// onOff is a boolean flag that also accepts on/off.
type onOff bool

func (b *onOff) String() string   { return strconv.FormatBool(bool(*b)) }
func (b *onOff) IsBoolFlag() bool { return true }
func (b *onOff) Set(s string) error {
	switch strings.ToLower(s) {
	case "on":
		*b = true
	case "off":
		*b = false
	default:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want on/off or a boolean, got %q", s)
		}
		*b = onOff(v)
	}
	return nil
}

// run is main with its arguments and outputs as parameters.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o        Options
		compress onOff
		useTLS   onOff
		conc     = fs.String("concurrency", "64", "outstanding requests; a comma list runs each in turn")
		jsonPath = fs.String("json", "", `write results as JSON to this file ("-": stdout)`)
		htmlPath = fs.String("html", "", "write a self-contained HTML report with charts to this file")
		serveOn  = fs.String("serve", "", "run only the server on this address until SIGINT/SIGTERM")
		relayOn  = fs.String("relay-serve", "", "run only a relay node on this address until SIGINT/SIGTERM")
		relayBuf = fs.Int("relay-buffer", 64<<10, "the relay node's BufferSize in bytes (-mode relay)")
		ro       RelayOptions
		addr     = fs.String("addr", "", "run only the client against this server address")
		twoproc  = fs.Bool("twoproc", false, "run the server as a child process")
		quiet    = fs.Bool("quiet", false, "no progress bar")
		cpuProf  = fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
		tracePth = fs.String("trace", "", "write an execution trace of the run to this file")
	)
	fs.IntVar(&o.Size, "size", 1024, "payload bytes per message")
	fs.IntVar(&o.Conns, "conns", 1, "pool connections (MaxActiveConnections)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured window per run")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured warm-up per run")
	fs.IntVar(&o.Service.BufferSize, "buffer", 0, "ipc BufferSize in bytes (0: 4 KiB)")
	fs.Var(&compress, "compress", "snappy compression (on/off)")
	fs.Var(&useTLS, "tls", "TLS 1.3 with a certificate made at run time (on/off)")
	fs.StringVar(&o.Mode, "mode", ModeEcho, strings.Join(modes, ", ")+" (the package doc says what each measures)")
	ro.OneWay, ro.Stream = 64<<20, 0
	fs.Var((*byteSize)(&ro.OneWay), "relay-oneway", "one-way message size of -mode relay (K, M, G suffixes)")
	fs.Var((*byteSize)(&ro.Stream), "relay-stream", "-mode relay: also stream one message of this size through the relay (K, M, G suffixes)")
	fs.BoolVar(&ro.Floor, "relay-floor", false, "-mode relay: also a raw TCP stream direct and through a forwarder in the relay node's process (read/write and splice), the kernel's floor")
	fs.StringVar(&ro.CPUProfile, "relay-cpuprofile", "", "write a CPU profile of the relay node to this file (-mode relay)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.Service.Compress = bool(compress)
	o.Service.TLS = bool(useTLS)
	o.Service.TLSNoVerify = o.Service.TLS && *addr != ""
	prof, err := startProfiles(*cpuProf, *tracePth) // profile.go
	if err != nil {
		return err
	}
	defer func() {
		if err := prof.stop(); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
		}
	}()

	if *serveOn != "" {
		return serve(*serveOn, o.Service, stdout, stderr)
	}
	if *relayOn != "" {
		return serveRelay(*relayOn, o.Service, *relayBuf, ro.Floor, stdout) // relay.go; -cpuprofile profiles it
	}
	if !slices.Contains(modes, o.Mode) {
		return fmt.Errorf("-mode %q: want one of %s", o.Mode, strings.Join(modes, ", "))
	}
	concs, err := parseList(*conc)
	if err != nil {
		return fmt.Errorf("-concurrency: %w", err)
	}
	if *addr != "" && *twoproc {
		return errors.New("-addr and -twoproc are exclusive")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if isLargeMode(o.Mode) {
		if o.Service.TLS {
			return errTLSLargeMode
		}
		return runLarge(ctx, o, concs, *twoproc, stdout) // large.go: hol, bulk, stream
	}
	if o.Mode == ModeRelay {
		var progress io.Writer
		if !*quiet {
			progress = stderr
		}
		ro.Buffer, ro.JSON = *relayBuf, *jsonPath
		return runRelay(ctx, o, ro, concs, stdout, stderr, progress) // relay.go
	}
	var t Target
	switch {
	case *addr != "":
		t.Addr = *addr
	case *twoproc:
		c, err := spawnServer(o.Service, stderr)
		if err != nil {
			return err
		}
		defer func() {
			if err := c.stop(); err != nil {
				fmt.Fprintln(stderr, "bench: server child:", err)
			}
		}()
		t.Addr = c.addr
	default:
		srv, err := StartServer("127.0.0.1:0", o.Service)
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				fmt.Fprintln(stderr, "bench: server Stop:", err)
			}
		}()
		t.Addr, t.Local = srv.Addr(), srv
	}
	if !*quiet {
		o.Progress = stderr
	}

	table := stdout
	if *jsonPath == "-" {
		table = stderr
	}
	var results []Result
	var runErr error
	for _, c := range concs {
		o.Concurrency = c
		res, err := Run(ctx, t, o)
		if err != nil && res.Mode == "" {
			runErr = err
			break
		}
		results = append(results, res)
		if err != nil {
			runErr = err
			break
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(results) > 0 {
		if err := WriteTable(table, results); err != nil {
			return err
		}
		if *jsonPath != "" {
			if err := WriteJSON(*jsonPath, stdout, results); err != nil {
				return err
			}
		}
		if *htmlPath != "" {
			if err := WriteHTML(*htmlPath, results); err != nil {
				return err
			}
		}
	}
	return runErr
}

// parseList parses a comma-separated list of positive integers.
func parseList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad value %q: want a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}
