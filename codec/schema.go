package codec

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// Schema is a parsed Avro schema. It is immutable and safe for concurrent use.
type Schema struct {
	text string
	refs []*Schema
	avro avro.Schema
}

// Parse parses an Avro schema text. refs are schemas whose named types the
// text may use by name (the registry's schema references), dependencies
// first; each ref brings its own refs along.
//
// Every call parses into a fresh name space, so two versions of one record
// never see each other's definitions.
func Parse(text string, refs ...*Schema) (*Schema, error) {
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("%w: empty schema text", ErrInvalidSchema)
	}
	names := &avro.SchemaCache{}
	seen := make(map[*Schema]bool)
	for _, r := range refs {
		if r == nil {
			return nil, fmt.Errorf("%w: nil schema reference", ErrInvalidSchema)
		}
		if err := r.addNames(names, seen); err != nil {
			return nil, err
		}
	}
	s, err := avro.ParseWithCache(text, "", names)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	return &Schema{text: text, refs: refs, avro: s}, nil
}

// addNames parses s and its references into names, so a schema that refers
// to s by name can be parsed with names.
func (s *Schema) addNames(names *avro.SchemaCache, seen map[*Schema]bool) error {
	if seen[s] {
		return nil
	}
	seen[s] = true
	for _, r := range s.refs {
		if err := r.addNames(names, seen); err != nil {
			return err
		}
	}
	if _, err := avro.ParseWithCache(s.text, "", names); err != nil {
		return fmt.Errorf("%w: reference: %v", ErrInvalidSchema, err)
	}
	return nil
}

// String returns the schema text as it was parsed.
func (s *Schema) String() string { return s.text }

// References returns the schemas this one was parsed with.
func (s *Schema) References() []*Schema { return s.refs }

// Canonical returns the schema in a normalized form: the Parsing Canonical
// Form, except that logical types are kept (two schemas that differ only in
// a logical type are different events). Docs, defaults and aliases are left
// out.
func (s *Schema) Canonical() string { return s.avro.String() }

// FullName returns the full name of a named schema (record, enum or fixed),
// "" for every other schema.
func (s *Schema) FullName() string {
	if n, ok := s.avro.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return ""
}

// Fingerprint returns the SHA-256 of Canonical.
func (s *Schema) Fingerprint() [32]byte { return s.avro.Fingerprint() }

// IsUnion reports whether the schema is a union at its top level: the shape
// of a topic described by one schema that references each event type.
func (s *Schema) IsUnion() bool { return s.avro.Type() == avro.Union }

// Branches returns the full names of a top-level union's named branches in
// order, nil for any other schema.
func (s *Schema) Branches() []string {
	u, ok := s.avro.(*avro.UnionSchema)
	if !ok {
		return nil
	}
	names := make([]string, len(u.Types()))
	for i, t := range u.Types() {
		if n, ok := t.(avro.NamedSchema); ok {
			names[i] = n.FullName()
		}
	}
	return names
}

// Fields returns the names of a record's fields in order, nil for any
// other schema.
func (s *Schema) Fields() []string {
	r, ok := s.avro.(*avro.RecordSchema)
	if !ok {
		return nil
	}
	names := make([]string, len(r.Fields()))
	for i, f := range r.Fields() {
		names[i] = f.Name()
	}
	return names
}

// branch returns the index of the union branch named name, or -1.
func (s *Schema) branch(name string) int {
	for i, n := range s.Branches() {
		if n != "" && n == name {
			return i
		}
	}
	return -1
}
