package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat reads the numeric fields of /proc/pid/stat: field k of proc(5)
// (1-based) is procStat(pid, k...)'s value at the same position as k in
// fields. The command name (field 2) is in parentheses and may hold spaces,
// so the fields after it are counted from the last ')'.
func procStat(pid int, fields ...int) ([]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	out := make([]int64, len(fields))
	for j, k := range fields {
		if k < 3 || k-3 >= len(f) {
			return nil, fmt.Errorf("/proc/%d/stat: no field %d in %d", pid, k, len(f)+2)
		}
		if out[j], err = strconv.ParseInt(f[k-3], 10, 64); err != nil {
			return nil, fmt.Errorf("/proc/%d/stat: field %d: %w", pid, k, err)
		}
	}
	return out, nil
}
