package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// timeout is the net.Error-like view of a timeout.
type timeout interface{ Timeout() bool }

func isTimeout(err error) bool {
	var to timeout
	return errors.As(err, &to) && to.Timeout()
}

func TestErrorTexts(t *testing.T) {
	require.NotEqual(t, ipc.ErrConnectionGone.Error(), ipc.ErrConnectionClosed.Error())
}

// TestTimeoutErrors: the keepalive timeouts are timeouts through the
// wrapping a completion carries (MessageError → ConnError → sentinel);
// other connection errors are not.
func TestTimeoutErrors(t *testing.T) {
	wrap := func(cause error) error {
		return &ipc.MessageError{Kind: ipc.ErrConnection, Cause: &ipc.ConnError{Op: "keepalive", Err: cause}}
	}
	for _, e := range []error{ipc.ErrDeadPeer, ipc.ErrInactivity} {
		require.True(t, isTimeout(e), "%v", e)
		require.True(t, isTimeout(wrap(e)), "%v", e)
		require.ErrorIs(t, wrap(e), e)
	}
	for _, e := range []error{ipc.ErrConnectionClosed, ipc.ErrKeepAliveFlood, ipc.ErrProtocol} {
		require.False(t, isTimeout(wrap(e)), "%v", e)
	}
}

// stuckResolver never answers: a dial ends with its DialTimeout.
type stuckResolver struct{}

func (stuckResolver) Resolve(ctx context.Context, _ string) ([]string, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestDialTimeoutIsTimeout: a one-shot request whose connection attempt
// exceeds DialTimeout fails with ErrConnection caused by a timeout.
func TestDialTimeoutIsTimeout(t *testing.T) {
	p := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](p, 1, nil)
	s, err := ipc.NewService(ipc.Config{Protocol: p, Resolver: stuckResolver{}, DialTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, s.Start())
	defer func() { require.NoError(t, s.Stop(context.Background())) }()
	res := make(chan error, 1)
	require.NoError(t, ipc.SendRequest(s, "stuck.invalid:1", testmsg.New(1, 64), ipc.OneShot,
		func(_, _ *testmsg.Message, err error) { res <- err }))
	select {
	case err := <-res:
		require.ErrorIs(t, err, ipc.ErrConnection)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.True(t, isTimeout(err), "%v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("no completion")
	}
}

// TestConfigNamesField: validation errors name the field at fault.
func TestConfigNamesField(t *testing.T) {
	p := ipc.NewProtocol()
	for _, c := range []struct {
		field string
		cfg   ipc.Config
	}{
		{"DialTimeout", ipc.Config{Protocol: p, DialTimeout: -1}},
		{"ReconnectMin", ipc.Config{Protocol: p, ReconnectMin: -1}},
		{"ReconnectMax", ipc.Config{Protocol: p, ReconnectMin: time.Second, ReconnectMax: time.Millisecond}},
	} {
		_, err := ipc.NewService(c.cfg)
		require.ErrorIs(t, err, ipc.ErrInvalidConfig, c.field)
		require.True(t, strings.Contains(err.Error(), c.field+":"), "%s: %v", c.field, err)
		require.False(t, strings.Contains(err.Error(), fmt.Sprintf("%s:", otherField(c.field))), "%v", err)
	}
}

func otherField(f string) string {
	if f == "ReconnectMax" {
		return "DialTimeout"
	}
	return "ReconnectMax"
}
