package main

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

// The default mode's leaves: values as people write them.
//
//	decimal (bytes or fixed)   "49.99": a string with exactly the scale's digits
//	                           after the point; read from a string or a JSON
//	                           number by its digits, never through a float, and
//	                           refused when it does not fit the precision, the
//	                           scale or the fixed size
//	bytes, fixed               base64 (standard alphabet, padded)
//	timestamp-millis, -micros  RFC 3339 in UTC, "2026-01-02T15:04:05.123Z"; read
//	                           with any offset, refused when finer than the unit
//	local-timestamp-*          the same without an offset, "2026-01-02T15:04:05.123"
//	date                       "2026-01-02"
//	time-millis, time-micros   a time of day, "15:04:05.123"
//	uuid                       its string, read only in the 8-4-4-4-12 hex form
//	duration                   {"months": 1, "days": 2, "milliseconds": 3}

const localLayout = "2006-01-02T15:04:05.999999999"

// plainOut spells raw, the Avro value of a leaf of schema s.
func plainOut(s avro.Schema, raw any) (any, error) {
	switch x := raw.(type) {
	case []byte:
		switch logicalOf(s) {
		case avro.Decimal:
			d, _ := decimalOf(s)
			return decimalString(unscaled(x), d.Scale()), nil
		case avro.Duration:
			if len(x) == 12 {
				return object{
					{"months", binary.LittleEndian.Uint32(x)},
					{"days", binary.LittleEndian.Uint32(x[4:])},
					{"milliseconds", binary.LittleEndian.Uint32(x[8:])},
				}, nil
			}
		}
		return base64.StdEncoding.EncodeToString(x), nil
	case int32:
		switch logicalOf(s) {
		case avro.Date:
			return time.Unix(int64(x)*86400, 0).UTC().Format(time.DateOnly), nil
		case avro.TimeMillis:
			return timeOfDay(time.Duration(x)*time.Millisecond, x, avro.TimeMillis)
		}
	case int64:
		switch logicalOf(s) {
		case avro.TimeMicros:
			if x < 0 || x >= int64(24*time.Hour/time.Microsecond) {
				return nil, fmt.Errorf("time-micros %d is not a time of day (--avro-json prints the number)", x)
			}
			return timeOfDay(time.Duration(x)*time.Microsecond, x, avro.TimeMicros)
		case avro.TimestampMillis:
			return timestamp(time.UnixMilli(x), time.RFC3339Nano, x, avro.TimestampMillis)
		case avro.TimestampMicros:
			return timestamp(time.UnixMicro(x), time.RFC3339Nano, x, avro.TimestampMicros)
		case avro.LocalTimestampMillis:
			return timestamp(time.UnixMilli(x), localLayout, x, avro.LocalTimestampMillis)
		case avro.LocalTimestampMicros:
			return timestamp(time.UnixMicro(x), localLayout, x, avro.LocalTimestampMicros)
		}
	}
	return numberOut(raw), nil
}

func timeOfDay(d time.Duration, n any, l avro.LogicalType) (any, error) {
	if d < 0 || d >= 24*time.Hour {
		return nil, fmt.Errorf("%s %d is not a time of day (--avro-json prints the number)", l, n)
	}
	return time.Time{}.Add(d).Format("15:04:05.999999999"), nil
}

func timestamp(t time.Time, layout string, n int64, l avro.LogicalType) (any, error) {
	if t = t.UTC(); t.Year() < 0 || t.Year() > 9999 {
		return nil, fmt.Errorf("%s %d is outside the years 0000 to 9999 (--avro-json prints the number)", l, n)
	}
	return t.Format(layout), nil
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
	switch l := logicalOf(s); l {
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
		t, err := timeIn(v, "15:04:05.999999999", `a time of day such as "15:04:05.123"`)
		if err != nil {
			return nil, err
		}
		d := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond())
		if l == avro.TimeMillis {
			n, err := inUnit(d, time.Millisecond, v, l)
			return int32(n), err
		}
		return inUnit(d, time.Microsecond, v, l)
	case avro.TimestampMillis, avro.TimestampMicros:
		t, err := timeIn(v, time.RFC3339Nano, `an RFC 3339 time such as "2026-01-02T15:04:05.123Z"`)
		if err != nil {
			return nil, err
		}
		return sinceEpoch(t, v, l)
	case avro.LocalTimestampMillis, avro.LocalTimestampMicros:
		t, err := timeIn(v, localLayout, `a date and time without offset such as "2026-01-02T15:04:05.123"`)
		if err != nil {
			return nil, err
		}
		return sinceEpoch(t, v, l)
	case avro.UUID:
		if str, ok := v.(string); !ok || !uuidSyntax.MatchString(str) {
			return nil, fmt.Errorf(`want a UUID such as "0190a0e8-5c6f-7a3e-8f00-5a1c2b3d4e5f", got %s`, jsonKind(v))
		}
		return v, nil
	}
	switch deref(s).Type() {
	case avro.Bytes, avro.Fixed:
		str, ok := v.(string)
		if ok {
			if b, err := base64.StdEncoding.DecodeString(str); err == nil {
				return b, nil
			}
		}
		return nil, fmt.Errorf("want base64 (bytes; --avro-json reads code points), got %s", jsonKind(v))
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
	var text string
	switch x := v.(type) {
	case string:
		text = x
	case json.Number:
		text = x.String()
	}
	shown := text
	if _, ok := v.(string); ok {
		shown = strconv.Quote(text)
	}
	m := decimalSyntax.FindStringSubmatch(text)
	if m == nil {
		return nil, fmt.Errorf(`want a decimal such as "%s" (%s), got %s`, decimalString(big.NewInt(4999), min(scale, 2)), kind, jsonKind(v))
	}
	// The value is digits × 10^shift at the scale.
	digits := strings.TrimLeft(m[2]+m[3], "0")
	shift := scale - len(m[3])
	if m[4] != "" {
		e, err := strconv.Atoi(m[4])
		if err != nil || e > 1000 || e < -1000 {
			return nil, fmt.Errorf("%s does not fit %s: exponent out of range", shown, kind)
		}
		shift += e
	}
	if shift < 0 {
		keep := max(len(digits)+shift, 0)
		if strings.Trim(digits[keep:], "0") != "" {
			return nil, fmt.Errorf("%s has more digits after the point than %s keeps (%d)", shown, kind, scale)
		}
		digits, shift = digits[:keep], 0
	}
	if digits == "" {
		digits, shift = "0", 0
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

func timeIn(v any, layout, want string) (time.Time, error) {
	str, ok := v.(string)
	if ok {
		if t, err := time.Parse(layout, str); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want %s, got %s", want, jsonKind(v))
}

// sinceEpoch is t in the unit of timestamp type l.
func sinceEpoch(t time.Time, v any, l avro.LogicalType) (int64, error) {
	if l == avro.TimestampMillis || l == avro.LocalTimestampMillis {
		n, err := inUnit(time.Duration(t.Nanosecond()), time.Millisecond, v, l)
		return t.Unix()*1e3 + n, err
	}
	n, err := inUnit(time.Duration(t.Nanosecond()), time.Microsecond, v, l)
	return t.Unix()*1e6 + n, err
}

// inUnit is d in unit, refused when d has finer digits.
func inUnit(d, unit time.Duration, v any, l avro.LogicalType) (int64, error) {
	if d%unit != 0 {
		return 0, fmt.Errorf("%q has digits finer than %s keeps (%v)", fmt.Sprint(v), l, unit)
	}
	return int64(d / unit), nil
}
