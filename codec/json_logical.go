package codec

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// The default mode's leaves, as people write them: decimals as decimal
// strings, bytes and fixed as base64, times as RFC 3339 text, durations
// as objects (see JSONOptions).

const (
	localLayout = "2006-01-02T15:04:05.999999999"
	clockLayout = "15:04:05.999999999"
)

// plainOut spells raw, the Avro value of a leaf of schema s.
func plainOut(s avro.Schema, raw any) (any, error) {
	l := logicalType(s)
	switch x := raw.(type) {
	case []byte:
		return bytesOut(s, l, x), nil
	case int32:
		switch l {
		case avro.Date:
			return time.Unix(int64(x)*86400, 0).UTC().Format(time.DateOnly), nil
		case avro.TimeMillis:
			return timeOfDay(time.Duration(x)*time.Millisecond, x, l)
		}
	case int64:
		return longOut(l, x)
	}
	return numberOut(raw), nil
}

// bytesOut spells bytes or a fixed: a decimal as its digits, a duration as
// an object, anything else in base64.
func bytesOut(s avro.Schema, l avro.LogicalType, b []byte) any {
	switch {
	case l == avro.Decimal:
		d, _ := decimalOf(s)
		return decimalString(unscaled(b), d.Scale())
	case l == avro.Duration && len(b) == 12:
		return jsonDuration{binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])}
	}
	return base64.StdEncoding.EncodeToString(b)
}

// jsonDuration is a duration as the default mode spells it.
type jsonDuration struct {
	Months       uint32 `json:"months"`
	Days         uint32 `json:"days"`
	Milliseconds uint32 `json:"milliseconds"`
}

// longOut spells a long: a time of day or a timestamp as text.
func longOut(l avro.LogicalType, x int64) (any, error) {
	switch l {
	case avro.TimeMicros:
		if x < 0 || x >= int64(24*time.Hour/time.Microsecond) {
			return nil, notSpelled(l, x, "a time of day")
		}
		return timeOfDay(time.Duration(x)*time.Microsecond, x, l)
	case avro.TimestampMillis, avro.LocalTimestampMillis:
		return timestamp(time.UnixMilli(x), x, l)
	case avro.TimestampMicros, avro.LocalTimestampMicros:
		return timestamp(time.UnixMicro(x), x, l)
	}
	return x, nil
}

func timeOfDay(d time.Duration, n any, l avro.LogicalType) (any, error) {
	if d < 0 || d >= 24*time.Hour {
		return nil, notSpelled(l, n, "a time of day")
	}
	return time.Time{}.Add(d).Format(clockLayout), nil
}

// timestamp spells t, of timestamp type l, in UTC: with an offset, but a
// local timestamp.
func timestamp(t time.Time, n int64, l avro.LogicalType) (any, error) {
	if t = t.UTC(); t.Year() < 0 || t.Year() > 9999 {
		return nil, notSpelled(l, n, "within the years 0000 to 9999")
	}
	if l == avro.LocalTimestampMillis || l == avro.LocalTimestampMicros {
		return t.Format(localLayout), nil
	}
	return t.Format(time.RFC3339Nano), nil
}

// notSpelled says that value n of logical type l has no text in this
// mode, not being what.
func notSpelled(l avro.LogicalType, n any, what string) error {
	return fmt.Errorf("%s %d is not %s (the Avro JSON form writes the number)", l, n, what)
}

// decimalString writes n / 10^scale with exactly scale digits after the
// point.
func decimalString(n *big.Int, scale int) string {
	digits := new(big.Int).Abs(n).String()
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	sign := ""
	if n.Sign() < 0 {
		sign = "-"
	}
	if scale == 0 {
		return sign + digits
	}
	return sign + digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
}

// plainIn reads v, a leaf of schema s, as its Avro value.
func plainIn(s avro.Schema, v any) (any, error) {
	switch l := logicalType(s); l {
	case avro.Decimal:
		return decimalIn(s, v)
	case avro.Duration:
		return durationIn(v)
	case avro.Date:
		t, err := timeIn(v, time.DateOnly, `a date such as "2026-01-02"`)
		if err != nil {
			return nil, err
		}
		return int32(floorDiv(t.Unix(), 86400)), nil
	case avro.TimeMillis, avro.TimeMicros:
		return clockIn(l, v)
	case avro.TimestampMillis, avro.TimestampMicros:
		return timestampIn(l, v, time.RFC3339Nano, `an RFC 3339 time such as "2026-01-02T15:04:05.123Z"`)
	case avro.LocalTimestampMillis, avro.LocalTimestampMicros:
		return timestampIn(l, v, localLayout, `a date and time without offset such as "2026-01-02T15:04:05.123"`)
	case avro.UUID:
		if str, ok := v.(string); !ok || !uuidSyntax.MatchString(str) {
			return nil, want(`a UUID such as "0190a0e8-5c6f-7a3e-8f00-5a1c2b3d4e5f"`, v)
		}
		return v, nil
	}
	switch deref(s).Type() {
	case avro.Bytes, avro.Fixed:
		if str, ok := v.(string); ok {
			if b, err := base64.StdEncoding.DecodeString(str); err == nil {
				return b, nil
			}
		}
		return nil, want("base64 (bytes; the Avro JSON form has code points)", v)
	}
	return primitiveIn(s, v)
}

var (
	decimalSyntax = regexp.MustCompile(`^([+-]?)([0-9]+)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$`)
	uuidSyntax    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// decimalIn reads a decimal string or JSON number, exactly, as the two's
// complement unscaled value of decimal s.
func decimalIn(s avro.Schema, v any) ([]byte, error) {
	d, _ := decimalOf(s)
	p, scale := d.Precision(), d.Scale()
	kind := fmt.Sprintf("decimal(%d,%d)", p, scale)
	text, shown := decimalText(v)
	m := decimalSyntax.FindStringSubmatch(text)
	if m == nil {
		return nil, want(fmt.Sprintf(`a decimal such as "%s" (%s)`, decimalString(big.NewInt(4999), min(scale, 2)), kind), v)
	}
	digits, shift, err := scaledDigits(m, scale, shown, kind)
	if err != nil {
		return nil, err
	}
	if len(digits)+shift > p {
		return nil, fmt.Errorf("%s does not fit %s: at most %d digits before the point", shown, kind, p-scale)
	}
	n, _ := new(big.Int).SetString(m[1]+digits+strings.Repeat("0", shift), 10)
	b, ok := twosComplement(n, fixedSize(s))
	if !ok {
		return nil, fmt.Errorf("%s does not fit %s in fixed(%d)", shown, kind, fixedSize(s))
	}
	return b, nil
}

// decimalText is the text of v, a decimal string or JSON number, and how
// an error shows it.
func decimalText(v any) (text, shown string) {
	switch x := v.(type) {
	case string:
		return x, strconv.Quote(x)
	case json.Number:
		return x.String(), x.String()
	}
	return "", ""
}

// scaledDigits reads m, decimalSyntax's match of shown, as digits ×
// 10^shift at scale, the digits without leading zeros ("0" for zero), or
// says why it does not fit kind.
func scaledDigits(m []string, scale int, shown, kind string) (string, int, error) {
	digits := strings.TrimLeft(m[2]+m[3], "0")
	shift := scale - len(m[3])
	if m[4] != "" {
		e, err := strconv.Atoi(m[4])
		if err != nil || e > 1000 || e < -1000 {
			return "", 0, fmt.Errorf("%s does not fit %s: exponent out of range", shown, kind)
		}
		shift += e
	}
	if shift < 0 {
		keep := max(len(digits)+shift, 0)
		if strings.Trim(digits[keep:], "0") != "" {
			return "", 0, fmt.Errorf("%s has more digits after the point than %s keeps (%d)", shown, kind, scale)
		}
		digits, shift = digits[:keep], 0
	}
	if digits == "" {
		digits, shift = "0", 0
	}
	return digits, shift, nil
}

func durationIn(v any) ([]byte, error) {
	const want = `want a duration such as {"months": 1, "days": 2, "milliseconds": 3}`
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s, got %s", want, jsonKind(v))
	}
	b := make([]byte, 12)
	for i, name := range []string{"months", "days", "milliseconds"} {
		n, ok := m[name].(json.Number)
		x, err := strconv.ParseUint(n.String(), 10, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("%s: %s is not a number from 0 to 4294967295", want, name)
		}
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	if len(m) != 3 {
		return nil, fmt.Errorf("%s, and nothing else", want)
	}
	return b, nil
}

// clockIn reads a time of day as the time-millis (an int32) or
// time-micros (an int64) l.
func clockIn(l avro.LogicalType, v any) (any, error) {
	t, err := timeIn(v, clockLayout, `a time of day such as "15:04:05.123"`)
	if err != nil {
		return nil, err
	}
	d := t.Sub(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC))
	if l == avro.TimeMillis {
		n, err := inUnit(d, time.Millisecond, v, l)
		return int32(n), err
	}
	return inUnit(d, time.Microsecond, v, l)
}

// timestampIn reads a timestamp written in layout as the timestamp type
// l: its units since the epoch.
func timestampIn(l avro.LogicalType, v any, layout, what string) (any, error) {
	t, err := timeIn(v, layout, what)
	if err != nil {
		return nil, err
	}
	if l == avro.TimestampMillis || l == avro.LocalTimestampMillis {
		n, err := inUnit(time.Duration(t.Nanosecond()), time.Millisecond, v, l)
		return t.Unix()*1e3 + n, err
	}
	n, err := inUnit(time.Duration(t.Nanosecond()), time.Microsecond, v, l)
	return t.Unix()*1e6 + n, err
}

func timeIn(v any, layout, what string) (time.Time, error) {
	if str, ok := v.(string); ok {
		if t, err := time.Parse(layout, str); err == nil {
			return t, nil
		}
	}
	return time.Time{}, want(what, v)
}

// inUnit is d in unit, refused when d has finer digits.
func inUnit(d, unit time.Duration, v any, l avro.LogicalType) (int64, error) {
	if d%unit != 0 {
		return 0, fmt.Errorf("%q has digits finer than %s keeps (%v)", fmt.Sprint(v), l, unit)
	}
	return int64(d / unit), nil
}
