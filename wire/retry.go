package wire

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// RetryRecord builds the record that carries rec, which group failed
// attempts times with err, to retry topic stage (RetryTopic(o.Topic, group,
// stage)), to be handled again at due: same key and value, the original
// headers (less any dlt-* and retry-* ones but the replay headers), and
// the retry headers.
func RetryRecord(rec *kgo.Record, o Origin, group string, stage, attempts int, err error, due time.Time) *kgo.Record {
	hs := keptHeaders(rec.Headers, 7)
	hs = append(hs,
		headerString(HeaderRetryAttempts, strconv.FormatInt(int64(attempts), 10)),
		header(HeaderRetryDue, due.UTC().AppendFormat(nil, time.RFC3339Nano)),
		headerString(HeaderRetryOriginalTopic, o.Topic),
		headerString(HeaderRetryOriginalPartition, strconv.FormatInt(int64(o.Partition), 10)),
		headerString(HeaderRetryOriginalOffset, strconv.FormatInt(o.Offset, 10)),
		header(HeaderRetryOriginalTimestamp, formatTime(o.Timestamp)),
		headerString(HeaderRetryError, truncateError(errText(err))),
	)
	return &kgo.Record{
		Topic:   RetryTopic(o.Topic, group, stage),
		Key:     rec.Key,
		Value:   rec.Value,
		Headers: hs,
	}
}
