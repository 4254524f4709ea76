package ipc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/internal/testmsg"
)

// A peer process: the test binary run again as the other end of a test
// that needs more sockets than one process may open (10,000 connections
// take 20,000 descriptors when both ends share a process), or that
// measures one end's heap alone. TestMain runs peerMain when peerEnv is
// set. The child talks over its stdin and stdout: it prints one line per
// step ("ready N", "heap B"), and exits when its stdin closes.
const peerEnv = "IPCFRAME_TEST_PEER"

// peerProtocol is the protocol of the peer processes' echo: a
// testmsg.Request, answered with itself.
func peerProtocol(server bool) *Protocol {
	p := NewProtocol()
	var h func(Context, *testmsg.Request)
	if server {
		h = func(ctx Context, m *testmsg.Request) { _ = ctx.Respond(m) }
	}
	MustRegister(p, 1, h)
	return p
}

// peerProc is a running peer process.
type peerProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// startPeer runs the test binary as a peer with args (see peerMain); it is
// stopped when the test ends.
func startPeer(tb testing.TB, args ...string) *peerProc {
	tb.Helper()
	exe, err := os.Executable()
	require.NoError(tb, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), peerEnv+"="+strings.Join(args, " "))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(tb, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	require.NoError(tb, cmd.Start())
	p := &peerProc{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	return p
}

// expect reads the peer's next line, which must start with word, and
// returns the rest.
func (p *peerProc) expect(tb testing.TB, word string) string {
	tb.Helper()
	require.True(tb, p.out.Scan(), "peer exited before %q: %v", word, p.out.Err())
	line := p.out.Text()
	rest, ok := strings.CutPrefix(line, word+" ")
	require.True(tb, ok, "peer said %q, want %q", line, word)
	return rest
}

// raiseFileLimit raises the soft limit on open files to the hard limit
// and returns it.
func raiseFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

// heapAlloc returns the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// peerMain runs the peer described by args and returns the exit code:
//
//	silent ADDR N       open N TCP connections to ADDR that never send
//	client ADDR N USE   an ipc client with N connections to ADDR; with
//	                    USE=1 one echo on each; reports its heap per
//	                    connection
func peerMain(args string) int {
	raiseFileLimit()
	f := strings.Fields(args)
	var err error
	switch f[0] {
	case "silent":
		err = peerSilent(f[1], atoi(f[2]))
	case "client":
		err = peerClient(f[1], atoi(f[2]), f[3] == "1")
	default:
		err = fmt.Errorf("unknown peer %q", args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		return 1
	}
	return 0
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// waitStdin blocks until the parent closes the peer's stdin.
func waitStdin() { _, _ = io.Copy(io.Discard, os.Stdin) }

// dialMany opens n connections to addr, 32 at a time (so the listener's
// backlog never overflows), with dial.
func dialMany(n int, dial func() error) error {
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	sem := make(chan struct{}, 32)
	for range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := dial(); err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func peerSilent(addr string, n int) error {
	var mu sync.Mutex
	conns := make([]net.Conn, 0, n)
	err := dialMany(n, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("ready %d\n", len(conns))
	waitStdin()
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}

// peerWarmups is how many connections a peer client opens, uses and
// closes before it measures its heap: enough to reach every event loop,
// so that the loops' own buffers are in the baseline.
const peerWarmups = 4

// peerClient runs an ipc client with n connections to addr. It first opens
// and closes peerWarmups connections, then measures its heap from there.
func peerClient(addr string, n int, use bool) error {
	opened := make(chan Conn, n)
	s, err := NewService(Config{
		Protocol: peerProtocol(false), MaxActiveConnections: n, MaxPendingConnections: 32,
		ConnectionStart: func(ci ConnInfo) { opened <- ci.Conn },
	})
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Stop(context.Background())
	pool := func(k int, use bool) error {
		if err := s.CreatePool(addr, PoolOptions{MinConnections: k}); err != nil {
			return err
		}
		conns := make([]Conn, k)
		for i := range conns {
			conns[i] = <-opened
		}
		if use {
			return echoEach(s, conns)
		}
		return nil
	}
	if err := pool(peerWarmups, true); err != nil {
		return err
	}
	closed := make(chan struct{})
	if err := s.ClosePool(addr, func() { close(closed) }); err != nil {
		return err
	}
	<-closed
	base := heapAlloc()
	if err := pool(n, use); err != nil {
		return err
	}
	fmt.Printf("ready %d\n", n)
	fmt.Printf("heap %d\n", (int64(heapAlloc())-int64(base))/int64(n))
	waitStdin()
	return nil
}

// echoEach makes one 1 KiB echo call on each connection, 32 at a time.
func echoEach(s *Service, conns []Conn) error {
	var next sync.Mutex
	i := 0
	return dialMany(len(conns), func() error {
		next.Lock()
		c := conns[i]
		i++
		next.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := CallTo[testmsg.Request, testmsg.Request](ctx, s, c, &testmsg.Request{Str: make([]byte, 1024)}, 0)
		return err
	})
}
