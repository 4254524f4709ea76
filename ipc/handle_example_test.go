package ipc_test

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ipcframe/ipcframe/ipc"
)

// errNoLogin is an application's reason for closing a connection.
var errNoLogin = errors.New("request before login")

// ExampleConn_CloseWithError closes a connection whose peer skipped a
// login step: only that connection closes, and ConnectionStop sees the
// reason (errors.Is(err, errNoLogin)).
func ExampleConn_CloseWithError() {
	var loggedIn sync.Map // Conn.ID -> true, set by the login handler (not shown)
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, g *Greeting) {
		if _, ok := loggedIn.Load(ctx.Conn().ID()); !ok {
			_ = ctx.Conn().CloseWithError(fmt.Errorf("%w: greeting from %s", errNoLogin, g.Name))
			return
		}
		_ = ctx.Respond(&Reply{Text: "hello " + g.Name})
	})
	_, err := ipc.NewService(ipc.Config{
		Protocol: p,
		ConnectionStop: func(info ipc.ConnInfo, err error) {
			if errors.Is(err, errNoLogin) {
				fmt.Println("closed", info.Remote, err)
			}
		},
	})
	fmt.Println(err)
	// Output: <nil>
}
