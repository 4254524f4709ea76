package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipcframe/ipcframe/compress"
	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// Wire type ids of the benchmark protocol. Client and server register the
// same ids; only the server has handlers.
const (
	idEcho  = 1 // request echoed back by the server
	idSink  = 2 // one-way message counted by the server
	idStats = 3 // request answered with the server's receive counters
)

// maxBody is the largest []byte field either side accepts: well above the
// 64 MiB one-way demo (serde's default MaxString is exactly 64 MiB).
const maxBody = 1 << 30

// stopTimeout bounds a graceful Stop.
const stopTimeout = 10 * time.Second

// Echo is the request of echo mode; the server responds with it unchanged.
// It embeds ipc.Recyclable, so received messages are reused (no
// allocation per message in steady state).
type Echo struct {
	ipc.Recyclable
	Data []byte
}

// Serde lists Echo's fields.
func (m *Echo) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

// Sink is the one-way message of oneway mode; the server counts its bytes.
type Sink struct {
	ipc.Recyclable
	Data []byte
}

// Serde lists Sink's fields.
func (m *Sink) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

// Stats asks the server for its receive counters (sent empty) and carries
// them back in the response.
type Stats struct {
	Bytes uint64 // payload bytes of Sink messages received
	Msgs  uint64 // Sink messages received
}

// Serde lists Stats' fields.
func (m *Stats) Serde(v *serde.Visitor) {
	v.Uint64(&m.Bytes)
	v.Uint64(&m.Msgs)
}

// newProtocol returns the benchmark protocol; srv, when not nil, supplies
// the server's handlers.
func newProtocol(srv *Server) *ipc.Protocol {
	p := ipc.NewProtocol()
	var (
		echo  func(ipc.Context, *Echo)
		sink  func(ipc.Context, *Sink)
		stats func(ipc.Context, *Stats)
	)
	if srv != nil {
		echo = func(ctx ipc.Context, m *Echo) {
			if err := ctx.Respond(m); err != nil {
				srv.respondErrs.Add(1)
			}
		}
		sink = func(_ ipc.Context, m *Sink) {
			srv.recvBytes.Add(uint64(len(m.Data)))
			srv.recvMsgs.Add(1)
		}
		stats = func(ctx ipc.Context, _ *Stats) {
			b, n := srv.Stats()
			if err := ctx.Respond(&Stats{Bytes: b, Msgs: n}); err != nil {
				srv.respondErrs.Add(1)
			}
		}
	}
	ipc.MustRegister(p, idEcho, echo)
	ipc.MustRegister(p, idSink, sink)
	ipc.MustRegister(p, idStats, stats)
	ipc.MustRegister[Join](p, idJoin, nil) // relay.go: the server registers on a relay
	hol.RegisterBulk(p, srv != nil)        // large.go: bulk and stream modes with -twoproc
	return p
}

// ServiceOptions are the ipc settings both sides of a run must agree on.
type ServiceOptions struct {
	BufferSize int  // ipc Config.BufferSize; 0 means the default (4 KiB)
	Compress   bool // snappy per-packet compression
	TLS        bool // TLS 1.3 with a certificate made at run time (tls.go)
	// TLSNoVerify makes the client skip verifying the server's
	// certificate (-addr: a separate server made its own).
	TLSNoVerify bool
}

// config returns the ipc configuration of either side (with -tls, both
// TLS roles are set; a service uses the one of its role).
func (o ServiceOptions) config(p *ipc.Protocol) (ipc.Config, error) {
	cfg := ipc.Config{
		Protocol:   p,
		BufferSize: o.BufferSize,
		Limits:     serde.Limits{MaxString: maxBody},
	}
	if o.Compress {
		cfg.Compression = compress.Snappy{}
	}
	if o.TLS {
		var err error
		if cfg.TLSServer, cfg.TLSClient, err = tlsConfigs(o.TLSNoVerify); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// Server is the benchmark server: it echoes Echo requests, counts Sink
// messages and answers Stats requests.
type Server struct {
	svc         *ipc.Service
	recvBytes   atomic.Uint64
	recvMsgs    atomic.Uint64
	respondErrs atomic.Uint64
}

// StartServer starts a benchmark server listening on listen ("host:port";
// port 0 picks one, see Addr).
func StartServer(listen string, o ServiceOptions) (*Server, error) {
	s := &Server{}
	cfg, err := o.config(newProtocol(s))
	if err != nil {
		return nil, err
	}
	cfg.Listen = listen
	svc, err := ipc.NewService(cfg)
	if err != nil {
		return nil, err
	}
	if err := svc.Start(); err != nil {
		return nil, err
	}
	s.svc = svc
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.svc.Addr().String() }

// Stats returns the payload bytes and the number of Sink messages received
// so far.
func (s *Server) Stats() (bytes, msgs uint64) {
	return s.recvBytes.Load(), s.recvMsgs.Load()
}

// RespondErrors returns how many responses the server failed to send.
func (s *Server) RespondErrors() uint64 { return s.respondErrs.Load() }

// Stop stops the server gracefully, waiting at most stopTimeout.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	return s.svc.Stop(ctx)
}

// serve runs only the server until SIGINT or SIGTERM, printing its address
// as the first line of stdout, then stops it gracefully.
func serve(listen string, o ServiceOptions, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := StartServer(listen, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, srv.Addr())
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	<-ctx.Done()
	b, n := srv.Stats()
	err = srv.Stop()
	fmt.Fprintf(stderr, "bench server %s stopped: %d one-way messages (%d bytes) received, %d respond errors\n",
		srv.Addr(), n, b, srv.RespondErrors())
	return err
}

// child is a server running in a child process (-twoproc).
type child struct {
	cmd  *exec.Cmd
	addr string
	done chan error // cmd.Wait's result
}

// spawnServer starts this program as a -serve child on 127.0.0.1:0 with the
// same service options and reads its address from its first stdout line.
func spawnServer(o ServiceOptions, stderr io.Writer) (*child, error) {
	if o.TLS {
		if _, _, err := loadBenchCerts(); err != nil { // exports them to the child
			return nil, err
		}
	}
	return spawnChild(stderr, "-serve", "127.0.0.1:0",
		"-buffer", strconv.Itoa(o.BufferSize),
		"-compress="+strconv.FormatBool(o.Compress),
		"-tls="+strconv.FormatBool(o.TLS))
}

// spawnChild starts this program with args, a child that prints its
// address as its first stdout line, and reads that address.
func spawnChild(stderr io.Writer, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		s, _ := r.ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, r)
		c.done <- cmd.Wait()
	}()
	select {
	case c.addr = <-line:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		return nil, errors.New("server child did not print its address within 10s")
	}
	if c.addr == "" {
		err := <-c.done
		return nil, fmt.Errorf("server child exited without an address: %v", err)
	}
	return c, nil
}

// stop asks the child to stop (SIGTERM: graceful Stop) and kills it if it
// has not exited within stopTimeout.
func (c *child) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		return err
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.done
		return errors.New("server child ignored SIGTERM; killed")
	}
}
