package test

// Real SOCKS5 servers for the proxy tests: Debian's microsocks and dante
// (danted), started by the test on a port of its own and killed when the
// test ends. The helpers are shared: the SOCKS5 tests (socks5_test.go),
// raw mode's proxy handshake (raw_test.go) and the network-namespace suite,
// which runs a server inside a namespace (socks5Options.Exec).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/socks5"
	"github.com/stretchr/testify/require"
)

// socks5Options describes a SOCKS5 server to start.
type socks5Options struct {
	// User and Pass, when User is set, make the server require RFC 1929
	// username/password authentication (microsocks only: dante checks
	// system accounts).
	User, Pass string
	// Deny lists destinations the server refuses (dante only), in dante's
	// rule syntax, e.g. "127.0.0.1/32 port = 7000". The server answers a
	// CONNECT to them with reply 2 (not allowed by ruleset).
	Deny []string
	// ListenIP is the address the server listens on and connects from.
	// Empty means 127.0.0.1.
	ListenIP string
	// Port is the port to listen on. Zero picks a free port on this host
	// (inside a namespace, choose one yourself).
	Port int
	// Exec, if set, prefixes the server's command line, for example
	// {"ip", "netns", "exec", "ns1"} to run it inside a namespace. dante
	// says when it listens; microsocks is probed with TCP connects from
	// the test's own namespace, so its address must be reachable from
	// there (a veth pair's address is).
	Exec []string
}

// socks5Server is one running SOCKS5 server process (its process group,
// since dante forks helpers).
type socks5Server struct {
	Addr string // "ip:port" it listens on

	bin       string
	args      []string
	readyLine string // a line of output that says it listens; "" = probe with connects

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logs strings.Builder
}

// needBinary returns the path of name, or skips the test when name is not
// installed on a developer machine. In CI (env CI set) a missing binary
// fails the test: .ci/run installs it.
func needBinary(t testing.TB, name string, dirs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (CI installs it in .ci/run)", name)
	}
	t.Skipf("%s is not installed (apt-get install %s); CI always runs this test", name, debianPackage(name))
	return ""
}

func debianPackage(bin string) string {
	if bin == "danted" {
		return "dante-server"
	}
	return bin
}

// freePort returns a TCP port free on ip right now; on 127.0.0.1 one below
// the ephemeral range (fixedPortAddr), so that no outgoing connection can
// take it while the server is down between Kill and Restart.
func freePort(t testing.TB, ip string) int {
	t.Helper()
	if ip == "127.0.0.1" {
		_, ps, _ := net.SplitHostPort(fixedPortAddr(t))
		port, _ := strconv.Atoi(ps)
		return port
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startMicrosocks starts microsocks (no authentication, or RFC 1929 with
// o.User and o.Pass).
func startMicrosocks(t testing.TB, o socks5Options) *socks5Server {
	t.Helper()
	if len(o.Deny) > 0 {
		t.Fatal("microsocks has no destination rules; use startDante")
	}
	bin := needBinary(t, "microsocks")
	return startSOCKS5(t, o, func(ip string, port int) *socks5Server {
		args := []string{"-i", ip, "-p", strconv.Itoa(port)}
		if o.User != "" {
			args = append(args, "-u", o.User, "-P", o.Pass)
		}
		return &socks5Server{bin: bin, args: args}
	})
}

// startDante starts danted with a generated configuration: no
// authentication, every destination allowed except o.Deny.
func startDante(t testing.TB, o socks5Options) *socks5Server {
	t.Helper()
	if o.User != "" {
		t.Fatal("dante authenticates system users; use startMicrosocks for RFC 1929")
	}
	bin := needBinary(t, "danted", "/usr/sbin", "/sbin")
	conf := filepath.Join(t.TempDir(), "danted.conf")
	return startSOCKS5(t, o, func(ip string, port int) *socks5Server {
		var b strings.Builder
		fmt.Fprintf(&b, "logoutput: stderr\ninternal: %s port = %d\nexternal: %s\n", ip, port, ip)
		b.WriteString("socksmethod: none\nclientmethod: none\n")
		b.WriteString("client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }\n")
		for _, d := range o.Deny {
			fmt.Fprintf(&b, "socks block { from: 0.0.0.0/0 to: %s }\n", d)
		}
		b.WriteString("socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }\n")
		if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		// One process per role; dante logs "running" once it listens.
		return &socks5Server{bin: bin, args: []string{"-f", conf, "-N", "1"}, readyLine: "running"}
	})
}

// startSOCKS5 starts the server that mk describes on o's address (trying
// another free port if the chosen one was taken meanwhile) and kills it
// when the test ends.
func startSOCKS5(t testing.TB, o socks5Options, mk func(ip string, port int) *socks5Server) *socks5Server {
	t.Helper()
	ip := o.ListenIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	var last error
	for range 5 {
		port := o.Port
		if port == 0 {
			port = freePort(t, ip)
		}
		s := mk(ip, port)
		s.Addr = net.JoinHostPort(ip, strconv.Itoa(port))
		if len(o.Exec) > 0 {
			s.args = append(append(append([]string(nil), o.Exec[1:]...), s.bin), s.args...)
			s.bin = o.Exec[0]
		}
		if last = s.start(); last == nil {
			t.Cleanup(s.Kill)
			return s
		}
		if o.Port != 0 {
			break
		}
	}
	t.Fatalf("SOCKS5 server did not start: %v", last)
	return nil
}

// start runs the process and waits until it accepts connections: until it
// prints readyLine, or, for a server that prints nothing, until a TCP
// connect to Addr succeeds (polled: an external process offers no other
// event). It fails if the process exits first.
func (s *socks5Server) start() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	ready := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.logs.Reset()
	s.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if !seen && s.readyLine != "" && strings.Contains(sc.Text(), s.readyLine) {
				seen = true
				close(ready)
			}
		}
		_ = cmd.Wait()
		close(done)
	}()
	if s.readyLine == "" {
		go s.probe(ready, done)
	}
	select {
	case <-ready:
		return nil
	case <-done:
		err = fmt.Errorf("exited: %s", s.output())
	case <-time.After(deadline):
		err = fmt.Errorf("not listening after %v: %s", deadline, s.output())
	}
	s.Kill()
	return fmt.Errorf("%s %s: %w", s.bin, strings.Join(s.args, " "), err)
}

// probe closes ready once a connect to Addr succeeds, or gives up when the
// process exits.
func (s *socks5Server) probe(ready chan<- struct{}, done <-chan struct{}) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			c.Close()
			close(ready)
			return
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

func (s *socks5Server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Kill kills the server's process group at once (SIGKILL: no goodbye to
// its clients, as when a proxy host dies) and waits for it to exit.
func (s *socks5Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Restart starts the server again on the same address after Kill.
func (s *socks5Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("SOCKS5 server restart: %v", err)
	}
}

// echoListener accepts TCP connections on 127.0.0.1 and echoes them until
// the test ends.
func echoListener(t testing.TB) string {
	t.Helper()
	p := newTCPProxy(t, "")
	p.start(func(c net.Conn) {
		defer c.Close()
		_, _ = io.Copy(c, c)
	})
	return p.addr()
}

// socks5Dial connects to dest through the proxy at proxy with a blocking
// handshake (internal/socks5), for the helpers' own test.
func socks5Dial(proxy, dest, user, pass string) (net.Conn, error) {
	host, ps, _ := net.SplitHostPort(dest)
	port, _ := strconv.Atoi(ps)
	hs, err := socks5.NewClient(host, uint16(port), user, pass)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", proxy, deadline)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(deadline))
	if err := hs.Run(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// TestSOCKS5ServerHelpers checks the helpers start each real server as
// asked: microsocks with and without a password, dante with a refused
// destination, and a restart on the same port after a kill.
func TestSOCKS5ServerHelpers(t *testing.T) {
	echo := echoListener(t)
	roundTrip := func(t *testing.T, proxy, user, pass string) {
		t.Helper()
		c, err := socks5Dial(proxy, echo, user, pass)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("ping"))
		require.NoError(t, err)
		got := make([]byte, 4)
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		require.Equal(t, "ping", string(got))
	}
	t.Run("microsocks", func(t *testing.T) {
		s := startMicrosocks(t, socks5Options{})
		roundTrip(t, s.Addr, "", "")
		s.Kill()
		s.Restart(t)
		roundTrip(t, s.Addr, "", "")
	})
	t.Run("microsocks password", func(t *testing.T) {
		s := startMicrosocks(t, socks5Options{User: "alice", Pass: "secret"})
		roundTrip(t, s.Addr, "alice", "secret")
		_, err := socks5Dial(s.Addr, echo, "alice", "wrong")
		require.ErrorIs(t, err, socks5.ErrAuth)
		_, err = socks5Dial(s.Addr, echo, "", "")
		require.ErrorIs(t, err, socks5.ErrNoMethod)
	})
	t.Run("dante", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(echo)
		blocked := echoListener(t)
		_, bport, _ := net.SplitHostPort(blocked)
		s := startDante(t, socks5Options{Deny: []string{"127.0.0.1/32 port = " + bport}})
		roundTrip(t, s.Addr, "", "")
		_, err := socks5Dial(s.Addr, blocked, "", "")
		require.ErrorIs(t, err, socks5.ErrRefused)
		var re *socks5.ReplyError
		require.ErrorAs(t, err, &re)
		require.Equal(t, byte(2), re.Code, "not allowed by ruleset (port %s allowed)", port)
	})
}
