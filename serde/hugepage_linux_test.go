package serde_test

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// TestLentArrayAdvisedHuge: the array a budget lends for a large value
// (16 MiB here) lies, past its first 2 MiB boundary, in memory advised
// for transparent huge pages (VmFlags "hg" in /proc/self/smaps), so that
// memory the runtime gave back to the kernel faults in 2 MiB at a time as
// the value's bytes land; the value decodes intact.
func TestLentArrayAdvisedHuge(t *testing.T) {
	const n = 16 << 20
	lim := serde.Limits{MaxString: 1 << 30}
	payload := patterned(n, 3)
	wire := encodeAll(t, serde.NewEncoder(nil, lim), &bytesMsg{B: payload}, 64<<10)
	d := serde.NewDecoder(nil, lim)
	d.SetValueBudget(&recBudget{lend: true})
	r := &bytesMsg{}
	d.Reset(r)
	k, done, err := d.Decode(wire[:64])
	require.NoError(t, err)
	require.False(t, done)
	sp := d.ValueSpace()
	require.Greater(t, len(sp), n-64, "the value's array is lent")
	at := uintptr(unsafe.Pointer(unsafe.SliceData(sp))) + 4<<20
	require.Contains(t, vmFlags(t, at), "hg", "VmFlags of the array's memory")
	_, done, err = d.Decode(wire[k:])
	require.NoError(t, err)
	require.True(t, done)
	require.True(t, bytes.Equal(payload, r.B), "value differs")
}

// vmFlags returns the VmFlags of the mapping holding address at.
func vmFlags(t *testing.T, at uintptr) []string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	require.NoError(t, err)
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if lo, hi, ok := strings.Cut(strings.Fields(line+" x")[0], "-"); ok {
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				in = uint64(at) >= a && uint64(at) < b
				continue
			}
		}
		if v, ok := strings.CutPrefix(line, "VmFlags:"); ok && in {
			return strings.Fields(v)
		}
	}
	require.NoError(t, sc.Err())
	t.Fatalf("no mapping holds %#x", at)
	return nil
}
