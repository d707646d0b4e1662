package main

import (
	"fmt"
	"reflect"
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

// ioTimeout bounds every request of a connection (kafka-go's Conn takes deadlines).
const ioTimeout = 10 * time.Second
