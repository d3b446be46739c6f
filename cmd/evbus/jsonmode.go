package main

import (
	"flag"
	"strconv"
	"time"

	"github.com/evbus/evbus/codec"
)

// jsonMode is how the CLI spells Avro values in JSON (publish reads it,
// tail and dlt show print it): as people write them, or with --avro-json
// in the Avro specification's JSON encoding, as Confluent's console tools
// do. codec.JSONOptions says what each spells how.
type jsonMode codec.JSONOptions

// The --avro-json flag: a jsonMode is a boolean flag.

func (m *jsonMode) String() string   { return strconv.FormatBool(m != nil && m.AvroJSON) }
func (m *jsonMode) IsBoolFlag() bool { return true }

func (m *jsonMode) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	m.AvroJSON = b
	return nil
}

// defineMode adds --avro-json to fs.
func defineMode(fs *flag.FlagSet) *jsonMode {
	m := new(jsonMode)
	fs.Var(m, "avro-json", "speak the Avro specification's JSON encoding, as Confluent's console tools do: unions as {\"<branch>\": value}, bytes and decimals as strings of code points 0 to 255, logical types as their numbers")
	return m
}

// The Avro engine decodes a local timestamp into a time.Time and encodes
// one from it through the process's zone, which a daylight saving change
// makes ambiguous for an hour a year. evbus speaks UTC: with it local
// timestamps are exact, both ways.
func init() { time.Local = time.UTC }
