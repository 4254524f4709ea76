package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEchoCLI runs the whole command in-process (embedded server) for about
// a second at concurrency 4 and checks the table and the JSON file.
func TestEchoCLI(t *testing.T) {
	holdWindow(t, 0, nil)
	path := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-duration", "800ms", "-warmup", "200ms", "-concurrency", "4", "-quiet", "-json", path}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	table := stdout.String()
	t.Logf("\n%s", table)
	header := strings.Fields(strings.SplitN(table, "\n", 2)[0])
	if strings.Join(header, " ") != strings.Join(tableColumns, " ") {
		t.Errorf("table header %q, want %q", header, tableColumns)
	}
	for _, col := range []string{"QPS", "MB/s", "p50", "p99", "p99.9", "max", "requests", "errors", "allocs/req"} {
		if !strings.Contains(table, col) {
			t.Errorf("table lacks column %q", col)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var results []Result
	if err := json.Unmarshal(b, &results); err != nil {
		t.Fatalf("JSON output does not parse: %v\n%s", err, b)
	}
	if len(results) != 1 {
		t.Fatalf("%d results, want 1", len(results))
	}
	r := results[0]
	if r.Requests <= 0 || r.Errors != 0 || r.FirstError != "" {
		t.Fatalf("requests %d, errors %d (%s)", r.Requests, r.Errors, r.FirstError)
	}
	if r.Mode != ModeEcho || r.Concurrency != 4 || r.Size != 1024 || r.QPS <= 0 || r.MaxUs < r.P50Us {
		t.Errorf("unexpected result %+v", r)
	}
}

// TestConcurrencyList checks that a list of concurrencies gives one row each.
func TestConcurrencyList(t *testing.T) {
	holdWindow(t, 0, nil)
	var stdout, stderr bytes.Buffer
	err := run([]string{"-duration", "200ms", "-warmup", "50ms", "-concurrency", "1,3", "-size", "100", "-quiet", "-json", "-"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	var results []Result
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("JSON on stdout does not parse: %v\n%s", err, stdout.String())
	}
	if len(results) != 2 || results[0].Concurrency != 1 || results[1].Concurrency != 3 {
		t.Fatalf("results %+v", results)
	}
	for _, r := range results {
		if r.Requests <= 0 || r.Errors != 0 {
			t.Errorf("c=%d: requests %d errors %d (%s)", r.Concurrency, r.Requests, r.Errors, r.FirstError)
		}
	}
	if !strings.Contains(stderr.String(), "allocs/req") {
		t.Errorf("table not on stderr with -json -:\n%s", stderr.String())
	}
}

// TestOneway sends 1 MiB one-way messages and checks that the server
// received them.
func TestOneway(t *testing.T) {
	srv, err := StartServer("127.0.0.1:0", ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A one-way send completes when written: the window is also held
	// until the server has received a message within it (ServerMsgs).
	holdWindow(t, 0, func() uint64 { _, n := srv.Stats(); return n })
	defer func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	}()
	for _, remote := range []bool{false, true} {
		tg := Target{Addr: srv.Addr(), Local: srv}
		if remote {
			tg.Local = nil // counters through Stats requests
		}
		res, err := Run(context.Background(), tg, Options{
			Mode: ModeOneway, Size: 1 << 20, Concurrency: 2, Conns: 1,
			Duration: 600 * time.Millisecond, Warmup: 100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteTable(&buf, []Result{res}); err != nil {
			t.Fatal(err)
		}
		t.Logf("remote=%v\n%s", remote, buf.String())
		if res.Requests <= 0 || res.Errors != 0 || res.ServerMsgs == 0 || res.MBps <= 0 {
			t.Fatalf("remote=%v: %+v", remote, res)
		}
		if res.ServerBytes != res.ServerMsgs<<20 {
			t.Errorf("server bytes %d for %d messages of 1 MiB", res.ServerBytes, res.ServerMsgs)
		}
	}
}

func TestParseList(t *testing.T) {
	got, err := parseList("1, 64,1024")
	if err != nil || len(got) != 3 || got[0] != 1 || got[1] != 64 || got[2] != 1024 {
		t.Fatalf("parseList: %v %v", got, err)
	}
	for _, bad := range []string{"", "0", "x", "1,,2"} {
		if _, err := parseList(bad); err == nil {
			t.Errorf("parseList(%q) accepted", bad)
		}
	}
}

// TestTLS runs the echo load over -tls (embedded server, certificate made
// at run time and verified), and checks that the server really speaks TLS:
// a plain client of it completes nothing.
func TestTLS(t *testing.T) {
	stopHolding := holdWindow(t, 0, nil)
	var stdout, stderr bytes.Buffer
	err := run([]string{"-tls", "-duration", "300ms", "-warmup", "100ms", "-concurrency", "4", "-quiet", "-json", "-"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	var results []Result
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("JSON on stdout does not parse: %v\n%s", err, stdout.String())
	}
	if len(results) != 1 || !results[0].TLS || results[0].Requests <= 0 || results[0].Errors != 0 {
		t.Fatalf("results %+v", results)
	}

	stopHolding() // the plain client must complete nothing
	srv, err := StartServer("127.0.0.1:0", ServiceOptions{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	}()
	res, err := Run(context.Background(), Target{Addr: srv.Addr(), Local: srv}, Options{
		Mode: ModeEcho, Size: 100, Concurrency: 1, Conns: 1,
		Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond,
	})
	if err == nil && res.Requests > 0 {
		t.Fatalf("a plain client of a -tls server completed %d requests", res.Requests)
	}

	if err := run([]string{"-tls", "-mode", "bulk", "-quiet"}, &stdout, &stderr); !errors.Is(err, errTLSLargeMode) {
		t.Fatalf("-tls -mode bulk: %v, want %v", err, errTLSLargeMode)
	}
}
