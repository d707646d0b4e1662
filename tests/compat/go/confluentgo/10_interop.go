// Scenario 10 with confluent-kafka-go: decode the compressed topics the other clients wrote in scenario 4
// (QUILL_INTEROP_TOPICS = topic=count,...; 25 JSON values per codec, one batch per codec).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

func init() { register("10_interop", interopScenario) }

func interopScenario() {
	pairs := strings.Split(os.Getenv("QUILL_INTEROP_TOPICS"), ",")
	check(len(pairs) > 0 && pairs[0] != "", "QUILL_INTEROP_TOPICS set by the runner")
	for _, pair := range pairs {
		parts := strings.SplitN(pair, "=", 2)
		check(len(parts) == 2, "topic=count: %q", pair)
		topic := parts[0]
		count, err := strconv.Atoi(parts[1])
		must(err, "count of "+topic)
		step("read-" + topic)
		var codecs []string
		for index, m := range consume(topic, []int32{0}, kafka.OffsetBeginning, count, nil) {
			var value struct {
				Codec *string `json:"codec"`
				I     int     `json:"i"`
				Text  string  `json:"text"`
			}
			must(json.Unmarshal(m.Value, &value), "JSON value of "+topic)
			codec := "none"
			if value.Codec != nil && *value.Codec != "" {
				codec = *value.Codec
			}
			if len(codecs) == 0 || codecs[len(codecs)-1] != codec {
				codecs = append(codecs, codec)
			}
			checkEq([]interface{}{codec, value.I, value.Text},
				[]interface{}{codecs[len(codecs)-1], index % perCodec, compressionText}, fmt.Sprintf("value %d of %s", index, topic))
		}
		check(len(codecs)*perCodec == count, "%s: %d values from codecs %v", topic, count, codecs)
		fmt.Printf("%s: %d values from codecs %v\n", topic, count, codecs)
	}
}
