package test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// Ports of SolidFrame's clientserver_upload, clientserver_upload_single
// and clientserver_download: files generated in the test (sizes scaled
// down from 30-60 MB, one of 30 MB kept) move in chunks of at most 100 KB
// as a conversation, and must be byte-identical at the end.

// fileSizes are the test files; SolidFrame uses 30, 40, 50 and 60 MB.
var fileSizes = []int{30_000_000, 3_000_000, 1_000_003, 100_000}

// chunkSize is the largest chunk per message (SolidFrame: 100 KB).
const chunkSize = 100_000

// fileChunk carries part of a file.
type fileChunk struct {
	Name   string
	Offset uint64
	Total  uint64
	Data   []byte
}

func (m *fileChunk) Serde(v *serde.Visitor) {
	v.String(&m.Name)
	v.Uint64(&m.Offset)
	v.Uint64(&m.Total)
	v.Bytes(&m.Data)
}

// fileAck acknowledges the chunks of a file up to Offset.
type fileAck struct {
	Name   string
	Offset uint64
}

func (m *fileAck) Serde(v *serde.Visitor) { v.String(&m.Name); v.Uint64(&m.Offset) }

// fileGet asks for a file (download).
type fileGet struct{ Name string }

func (m *fileGet) Serde(v *serde.Visitor) { v.String(&m.Name) }

// makeFiles writes the test files into a new directory and returns it.
func makeFiles(t *testing.T) string {
	dir := t.TempDir()
	t.Cleanup(func() {
		for i := range fileSizes {
			fileCache.Delete(filepath.Join(dir, fileName(i)))
		}
	})
	for i, n := range fileSizes {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fileName(i)), b, 0o600))
	}
	return dir
}

func fileName(i int) string { return fmt.Sprintf("file%d.bin", i) }

// requireSameFiles compares every test file of two directories.
func requireSameFiles(t *testing.T, a, b string) {
	for i := range fileSizes {
		x, err := os.ReadFile(filepath.Join(a, fileName(i)))
		require.NoError(t, err)
		y, err := os.ReadFile(filepath.Join(b, fileName(i)))
		require.NoError(t, err)
		require.True(t, bytes.Equal(x, y), "%s differs (%d and %d bytes)", fileName(i), len(x), len(y))
	}
}

// fileSink writes received chunks into a directory and reports each file
// once all its bytes have arrived (chunks may complete out of order).
type fileSink struct {
	dir  string
	mu   sync.Mutex
	got  map[string]uint64
	done chan string
	err  chan error
}

func newFileSink(dir string) *fileSink {
	return &fileSink{dir: dir, got: map[string]uint64{}, done: make(chan string, len(fileSizes)), err: make(chan error, 1)}
}

func (s *fileSink) write(m *fileChunk) {
	if err := s.writeErr(m); err != nil {
		s.fail(err)
	}
}

// fail records the first error (any goroutine; never blocks).
func (s *fileSink) fail(err error) {
	select {
	case s.err <- err:
	default:
	}
}

func (s *fileSink) writeErr(m *fileChunk) error {
	f, err := os.OpenFile(filepath.Join(s.dir, m.Name), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(m.Data, int64(m.Offset)); err != nil {
		return err
	}
	s.mu.Lock()
	s.got[m.Name] += uint64(len(m.Data))
	full := s.got[m.Name] == m.Total
	s.mu.Unlock()
	if full {
		s.done <- m.Name
	}
	return nil
}

// waitFiles waits until every test file has arrived whole.
func (s *fileSink) waitFiles(t *testing.T) {
	for range fileSizes {
		select {
		case <-s.done:
		case err := <-s.err:
			t.Fatal(err)
		case <-timeout():
			t.Fatal("timed out waiting for the files")
		}
	}
}

// fileCache holds the test files read once per directory.
var fileCache sync.Map // dir/name -> []byte

// readChunk returns chunk k of file i in dir.
func readChunk(t testing.TB, dir string, i, k int) *fileChunk {
	path := filepath.Join(dir, fileName(i))
	v, ok := fileCache.Load(path)
	if !ok {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
			return nil
		}
		v, _ = fileCache.LoadOrStore(path, b)
	}
	b := v.([]byte)
	off := k * chunkSize
	return &fileChunk{Name: fileName(i), Offset: uint64(off), Total: uint64(len(b)), Data: b[off:min(off+chunkSize, len(b))]}
}

func chunks(i int) int { return (fileSizes[i] + chunkSize - 1) / chunkSize }

// timeout fires when a scenario has waited too long for an event.
func timeout() <-chan time.Time { return time.After(deadline) }

// TestClientServerUpload ports clientserver_upload: each file goes up as
// a conversation of chunks, two in flight per acknowledgement (every second
// chunk is a request the server acknowledges); all files move at once.
func TestClientServerUpload(t *testing.T) { runUpload(t, 2) }

// TestClientServerUploadSingle ports clientserver_upload_single: one chunk
// in flight per acknowledgement.
func TestClientServerUploadSingle(t *testing.T) { runUpload(t, 1) }

func runUpload(t *testing.T, perAck int) {
	src, dst := makeFiles(t), t.TempDir()
	sink := newFileSink(dst)
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *fileChunk) {
		sink.write(m)
		if ctx.IsRequest() {
			_ = ctx.Respond(&fileAck{Name: m.Name, Offset: m.Offset + uint64(len(m.Data))})
		}
	})
	ipc.MustRegister[fileAck](sp, 2, nil)
	server := startService(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	cp := ipc.NewProtocol()
	ipc.MustRegister[fileChunk](cp, 1, nil)
	ipc.MustRegister[fileAck](cp, 2, nil)
	client := startService(t, ipc.Config{Protocol: cp})
	addr := server.Addr().String()

	errs := make(chan error, len(fileSizes))
	for i := range fileSizes {
		go func() { errs <- uploadFile(t, client, addr, src, i, perAck) }()
	}
	for range fileSizes {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case <-timeout():
			t.Fatal("timed out uploading")
		}
	}
	sink.waitFiles(t)
	requireSameFiles(t, src, dst)
}

// uploadFile sends file i: perAck-1 one-way chunks, then a request chunk
// whose acknowledgement lets the next group go.
func uploadFile(t *testing.T, client *ipc.Service, addr, dir string, i, perAck int) error {
	acked := make(chan error, 1)
	for k := 0; k < chunks(i); k++ {
		c := readChunk(t, dir, i, k)
		if c == nil {
			return fmt.Errorf("cannot read %s", fileName(i))
		}
		if (k+1)%perAck != 0 && k != chunks(i)-1 {
			if err := client.Send(addr, c, 0, nil); err != nil {
				return err
			}
			continue
		}
		err := ipc.SendRequest(client, addr, c, 0, func(req *fileChunk, ack *fileAck, err error) {
			if err == nil && ack.Offset != req.Offset+uint64(len(req.Data)) {
				err = fmt.Errorf("%s: ack at %d for chunk at %d", req.Name, ack.Offset, req.Offset)
			}
			acked <- err
		})
		if err != nil {
			return err
		}
		select {
		case err := <-acked:
			if err != nil {
				return err
			}
		case <-timeout():
			return fmt.Errorf("%s: no acknowledgement", fileName(i))
		}
	}
	return nil
}

// TestClientServerDownload ports clientserver_download: the client asks
// for each file; the server streams it as ResponsePart chunks (the last
// one ResponseLast), two per acknowledgement; the client acknowledges every
// second chunk with a message to the server, which then sends the next two.
func TestClientServerDownload(t *testing.T) {
	src, dst := makeFiles(t), t.TempDir()
	server := startDownloadServer(t, src)
	downloadAll(t, server.Addr().String(), dst)
	requireSameFiles(t, src, dst)
}

// TestClientFrontBackDownload ports clientfrontback_download: the client
// downloads from a front server that fetches each file from a back server
// through its own client service and relays every part and every
// acknowledgement (application code; four services in all).
func TestClientFrontBackDownload(t *testing.T) {
	src, dst := makeFiles(t), t.TempDir()
	back := startDownloadServer(t, src)
	backAddr := back.Addr().String()
	relay := startService(t, ipc.Config{Protocol: downloadProtocol(nil, nil)})
	errs := make(chan error, 1)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	front := startService(t, ipc.Config{Listen: "127.0.0.1:0", Protocol: downloadProtocol(
		func(ctx ipc.Context, m *fileGet) {
			err := ipc.SendRequest(relay, backAddr, &fileGet{Name: m.Name}, 0, func(_ *fileGet, c *fileChunk, err error) {
				if err != nil {
					fail(err)
					return
				}
				flags := ipc.ResponsePart
				if c.Offset+uint64(len(c.Data)) == c.Total {
					flags = ipc.ResponseLast
				}
				if err := ctx.RespondFlags(c, flags, nil); err != nil {
					fail(err)
				}
			})
			if err != nil {
				fail(err)
			}
		},
		func(_ ipc.Context, m *fileAck) {
			if err := relay.Send(backAddr, &fileAck{Name: m.Name, Offset: m.Offset}, 0, nil); err != nil {
				fail(err)
			}
		})})
	downloadAll(t, front.Addr().String(), dst)
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	requireSameFiles(t, src, dst)
}

// downloadProtocol registers fileGet (1), fileAck (2) and fileChunk (3)
// with the given handlers (nil: none).
func downloadProtocol(get func(ipc.Context, *fileGet), ack func(ipc.Context, *fileAck)) *ipc.Protocol {
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, get)
	ipc.MustRegister(p, 2, ack)
	ipc.MustRegister[fileChunk](p, 3, nil)
	return p
}

// startDownloadServer serves the files of dir: a fileGet is answered with
// ResponsePart chunks (the last one ResponseLast), two at first and two
// more per fileAck.
func startDownloadServer(t *testing.T, dir string) *ipc.Service {
	type download struct {
		ctx  ipc.Context
		i    int
		next int // next chunk to send
	}
	var (
		mu    sync.Mutex
		state = map[string]*download{}
	)
	// sendTwo sends the next two chunks of d (any goroutine).
	sendTwo := func(d *download) {
		for range 2 {
			mu.Lock()
			k := d.next
			if k >= chunks(d.i) {
				mu.Unlock()
				return
			}
			d.next++
			mu.Unlock()
			flags := ipc.ResponsePart
			if k == chunks(d.i)-1 {
				flags = ipc.ResponseLast
			}
			if c := readChunk(t, dir, d.i, k); c != nil {
				if err := d.ctx.RespondFlags(c, flags, nil); err != nil {
					t.Error(err)
				}
			}
		}
	}
	return startService(t, ipc.Config{Listen: "127.0.0.1:0", Protocol: downloadProtocol(
		func(ctx ipc.Context, m *fileGet) {
			var i int
			if _, err := fmt.Sscanf(m.Name, "file%d.bin", &i); err != nil || i >= len(fileSizes) {
				t.Errorf("bad file name %q", m.Name)
				return
			}
			d := &download{ctx: ctx, i: i}
			mu.Lock()
			state[m.Name] = d
			mu.Unlock()
			sendTwo(d)
		},
		func(_ ipc.Context, m *fileAck) {
			mu.Lock()
			d := state[m.Name]
			mu.Unlock()
			if d != nil {
				sendTwo(d)
			}
		})})
}

// downloadAll asks addr for every test file and writes them into dst,
// acknowledging every second chunk.
func downloadAll(t *testing.T, addr, dst string) {
	client := startService(t, ipc.Config{Protocol: downloadProtocol(nil, nil)})
	sink := newFileSink(dst)
	for i := range fileSizes {
		parts := 0
		err := ipc.SendRequest(client, addr, &fileGet{Name: fileName(i)}, 0, func(_ *fileGet, c *fileChunk, err error) {
			if err != nil {
				sink.fail(err)
				return
			}
			sink.write(c)
			if parts++; parts%2 == 0 {
				if err := client.Send(addr, &fileAck{Name: c.Name, Offset: c.Offset + uint64(len(c.Data))}, 0, nil); err != nil {
					sink.fail(err)
				}
			}
		})
		require.NoError(t, err)
	}
	sink.waitFiles(t)
}

// TestClientFrontBackUpload ports clientfrontback_upload: the client
// uploads to a front server, which forwards every chunk to a back server
// through its own client service and acknowledges the client only once
// the back server acknowledged the chunk (application code relays; four
// services in all).
func TestClientFrontBackUpload(t *testing.T) {
	src, dst := makeFiles(t), t.TempDir()
	sink := newFileSink(dst)
	bp := ipc.NewProtocol()
	ipc.MustRegister(bp, 1, func(ctx ipc.Context, m *fileChunk) {
		sink.write(m)
		if ctx.IsRequest() {
			_ = ctx.Respond(&fileAck{Name: m.Name, Offset: m.Offset + uint64(len(m.Data))})
		}
	})
	ipc.MustRegister[fileAck](bp, 2, nil)
	back := startService(t, ipc.Config{Protocol: bp, Listen: "127.0.0.1:0"})

	relayProto := ipc.NewProtocol()
	ipc.MustRegister[fileChunk](relayProto, 1, nil)
	ipc.MustRegister[fileAck](relayProto, 2, nil)
	relay := startService(t, ipc.Config{Protocol: relayProto})
	backAddr := back.Addr().String()

	fp := ipc.NewProtocol()
	ipc.MustRegister(fp, 1, func(ctx ipc.Context, m *fileChunk) {
		fwd := &fileChunk{Name: m.Name, Offset: m.Offset, Total: m.Total, Data: m.Data}
		if !ctx.IsRequest() {
			if err := relay.Send(backAddr, fwd, 0, nil); err != nil {
				sink.fail(err)
			}
			return
		}
		err := ipc.SendRequest(relay, backAddr, fwd, 0, func(_ *fileChunk, ack *fileAck, err error) {
			if err != nil {
				sink.fail(err)
				return
			}
			_ = ctx.Respond(ack)
		})
		if err != nil {
			sink.fail(err)
		}
	})
	ipc.MustRegister[fileAck](fp, 2, nil)
	front := startService(t, ipc.Config{Protocol: fp, Listen: "127.0.0.1:0"})

	cp := ipc.NewProtocol()
	ipc.MustRegister[fileChunk](cp, 1, nil)
	ipc.MustRegister[fileAck](cp, 2, nil)
	client := startService(t, ipc.Config{Protocol: cp})
	addr := front.Addr().String()

	errs := make(chan error, len(fileSizes))
	for i := range fileSizes {
		go func() { errs <- uploadFile(t, client, addr, src, i, 2) }()
	}
	for range fileSizes {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case err := <-sink.err:
			t.Fatal(err)
		case <-timeout():
			t.Fatal("timed out uploading")
		}
	}
	sink.waitFiles(t)
	requireSameFiles(t, src, dst)
}
