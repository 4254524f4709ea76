package tlsrecords

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMeterSplitsAnywhere: records cut at every byte (headers included)
// are parsed as when written whole; other record types are skipped.
func TestMeterSplitsAnywhere(t *testing.T) {
	var stream []byte
	for _, r := range []struct {
		typ  byte
		size int
	}{{22, 300}, {ContentAppData, FullBody}, {21, 2}, {ContentAppData, 7}} {
		stream = append(stream, r.typ, 3, 3, byte(r.size>>8), byte(r.size))
		stream = append(stream, make([]byte, r.size)...)
	}
	var whole, bytewise Meter
	_, _ = whole.Write(stream)
	for i := range stream {
		_, _ = bytewise.Write(stream[i : i+1])
	}
	require.Equal(t, []int{FullBody, 7}, whole.Sizes())
	require.Equal(t, whole.Sizes(), bytewise.Sizes())
}

// ExampleMeter parses one application-data record of 5 body bytes.
func ExampleMeter() {
	var m Meter
	_, _ = m.Write([]byte{ContentAppData, 3, 3, 0, 5, 1, 2, 3, 4, 5})
	fmt.Println(m.Sizes())
	// Output: [5]
}
