package ipc_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/ipcframe/ipcframe/ipc"
)

// directory is a toy service-discovery registry: service name to the
// addresses of its instances. A real one would be Consul, etcd, a
// Kubernetes endpoints watch...
type directory struct {
	mu        sync.Mutex
	instances map[string][]string
}

// Resolve implements ipc.Resolver: the current instances of the service.
func (d *directory) Resolve(_ context.Context, name string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	addrs, ok := d.instances[name]
	if !ok {
		return nil, fmt.Errorf("no service %q", name)
	}
	return append([]string(nil), addrs...), nil
}

// A Resolver plugs service discovery into a Service: destination names
// are looked up in it, again every ResolveInterval and after failures, so
// pools follow instances that come and go.
func ExampleResolver() {
	server, _ := ipc.NewService(ipc.Config{Protocol: newProtocol(true), Listen: "127.0.0.1:0"})
	_ = server.Start()
	defer server.Stop(context.Background())

	dir := &directory{instances: map[string][]string{
		"greeter:7000": {server.Addr().String()},
	}}
	client, _ := ipc.NewService(ipc.Config{Protocol: newProtocol(false), Resolver: dir})
	_ = client.Start()
	defer client.Stop(context.Background())

	resp, err := ipc.Call[Greeting, Reply](context.Background(), client, "greeter:7000", &Greeting{Name: "gopher", Count: 1}, 0)
	fmt.Println(resp.Text, err)
	st, _ := client.PoolStats("greeter:7000")
	fmt.Println("addresses:", len(st.Addresses), "resolutions:", st.Resolver.Resolutions)
	// Output:
	// hello gopher!  <nil>
	// addresses: 1 resolutions: 1
}
