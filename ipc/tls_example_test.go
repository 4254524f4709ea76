package ipc_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/ipcframe/ipcframe/internal/testcert"
	"github.com/ipcframe/ipcframe/ipc"
)

// A TLS server and client: the client verifies the server's certificate
// against its CA for the host of the destination name ("127.0.0.1"). Add
// ClientAuth and ClientCAs to the server, and Certificates to the client,
// for mutual TLS.
func ExampleConfig_tls() {
	ca := testcert.NewCA("example CA")
	server, _ := ipc.NewService(ipc.Config{
		Protocol:  newProtocol(true),
		Listen:    "127.0.0.1:0",
		TLSServer: &tls.Config{Certificates: []tls.Certificate{ca.Issue(testcert.Leaf{})}},
	})
	_ = server.Start()
	defer server.Stop(context.Background())

	client, _ := ipc.NewService(ipc.Config{
		Protocol:  newProtocol(false),
		TLSClient: &tls.Config{RootCAs: ca.Pool},
		ConnectionStart: func(info ipc.ConnInfo) {
			st, _ := info.Conn.TLSState()
			fmt.Println("TLS 1.3:", st.Version == tls.VersionTLS13)
		},
	})
	_ = client.Start()
	defer client.Stop(context.Background())

	done := make(chan string, 1)
	_ = ipc.SendRequest(client, server.Addr().String(), &Greeting{Name: "gopher", Count: 1}, 0,
		func(_ *Greeting, r *Reply, err error) {
			if err != nil {
				done <- err.Error()
				return
			}
			done <- r.Text
		})
	select {
	case s := <-done:
		fmt.Println(s)
	case <-time.After(30 * time.Second):
		fmt.Println("timeout")
	}
	// Output:
	// TLS 1.3: true
	// hello gopher!
}
