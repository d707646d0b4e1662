package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"time"
)

func step(name string) { fmt.Printf("STEP %s\n", name) }

func topicName(suffix string) string { return prefix + "-" + suffix }

func check(condition bool, format string, args ...interface{}) {
	if !condition {
		panic(fmt.Sprintf(format, args...))
	}
}

func checkEq(actual, expected interface{}, what string) {
	if !reflect.DeepEqual(actual, expected) {
		panic(fmt.Sprintf("%s: expected %#v, got %#v", what, expected, actual))
	}
}

func must(err error, what string) {
	if err != nil {
		panic(fmt.Sprintf("%s: %v", what, err))
	}
}

// deadline bounds a wait; expired panics with what was awaited.
type deadline struct {
	end  time.Time
	what string
}

func within(d time.Duration, what string) deadline { return deadline{time.Now().Add(d), what} }

func (d deadline) check(detail string) {
	if time.Now().After(d.end) {
		panic(fmt.Sprintf("timed out: %s %s", d.what, detail))
	}
}

func (d deadline) remaining() time.Duration {
	left := time.Until(d.end)
	if left < 0 {
		return 0
	}
	return left
}

// murmur2 is Java's Utils.murmur2, the default partitioner's hash (a signed 32-bit int).
func murmur2(data []byte) int32 {
	const m = uint32(0x5bd1e995)
	length := len(data)
	h := uint32(0x9747b28c) ^ uint32(length)
	blocks := length / 4
	for i := 0; i < blocks; i++ {
		k := binary.LittleEndian.Uint32(data[i*4:])
		k *= m
		k ^= k >> 24
		k *= m
		h = h*m ^ k
	}
	tail := blocks * 4
	switch length & 3 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// javaPartition is the partition Java's default partitioner picks for a key.
func javaPartition(key string, partitions int32) int32 {
	return (murmur2([]byte(key)) & 0x7fffffff) % partitions
}

// murmur2Hash is murmur2 as a hash.Hash32, for hash partitioners that take one.
type murmur2Hash struct{ data []byte }

func newMurmur2Hash() *murmur2Hash                 { return &murmur2Hash{} }
func (h *murmur2Hash) Write(p []byte) (int, error) { h.data = append(h.data, p...); return len(p), nil }
func (h *murmur2Hash) Sum(b []byte) []byte {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], h.Sum32())
	return append(b, sum[:]...)
}
func (h *murmur2Hash) Reset()         { h.data = h.data[:0] }
func (h *murmur2Hash) Size() int      { return 4 }
func (h *murmur2Hash) BlockSize() int { return 4 }
func (h *murmur2Hash) Sum32() uint32  { return uint32(murmur2(h.data)) }

func init() {
	// Known values of org.apache.kafka.common.utils.Utils.murmur2 (from Kafka's UtilsTest).
	for input, expected := range map[string]int32{
		"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
		"a-little-bit-longer-string": -1486304829, "abc": 479470107,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
	} {
		checkEq(murmur2([]byte(input)), expected, "murmur2("+input+") self-check")
	}
}

// The runner side-channel of the restart scenarios: print "RESTART-BROKER <n>"; the runner
// restarts the broker and writes "restarted" on our stdin.
var restarts int32

func startRestartListener() {
	go func() {
		lines := bufio.NewScanner(os.Stdin)
		for lines.Scan() {
			if strings.TrimSpace(lines.Text()) == "restarted" {
				atomic.AddInt32(&restarts, 1)
			}
		}
	}()
}

func requestRestart(phase int32) { fmt.Printf("RESTART-BROKER %d\n", phase) }

func restarted(phase int32) bool { return atomic.LoadInt32(&restarts) >= phase }

func timeAfter(d deadline) <-chan time.Time { return time.After(d.remaining()) }
