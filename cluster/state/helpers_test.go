package state

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// filler sets every field of a value, recursively, to a distinct non-zero
// value, so that tests over "every field" cover fields added later without
// being edited.
type filler struct{ n int }

func (f *filler) next() int { f.n++; return f.n }

func (f *filler) fill(v reflect.Value) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, f.next(), time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", f.next()))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.next()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(f.next()))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(f.next()) + 0.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			f.fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			f.fill(k)
			e := reflect.New(v.Type().Elem()).Elem()
			f.fill(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				f.fill(v.Field(i))
			}
		}
	default:
		panic(fmt.Sprintf("filler: unsupported kind %s of %s", v.Kind(), v.Type()))
	}
}

// full returns a row of type T with every field set, then made valid.
func full[T any](f *filler) *T {
	v := new(T)
	f.fill(reflect.ValueOf(v).Elem())
	switch r := any(v).(type) {
	case *model.Node:
		r.Role, r.Availability, r.Status.State = model.RoleManager, model.AvailabilityDrain, model.NodeDown
		r.ManagerStatus.Reachability = model.ReachabilityLeader
	case *model.Source:
		r.Kind, r.Status = model.SourceGitPull, model.SyncOutOfSync
		r.History[0].Result, r.History[1].Result = model.SyncApplied, model.SyncRejected
	case *model.Stack:
		r.Spec.Name = r.Name
		// The store never keeps secret or config content in a stack.
		for _, s := range r.Spec.Secrets {
			s.Data = nil
		}
		for _, c := range r.Spec.Configs {
			c.Data = nil
		}
	case *model.Service:
		r.Name = spec.FullName(r.Stack, r.Spec.Name)
		r.UpdateStatus.State = model.UpdateRollbackPaused
	case *model.Task:
		r.DesiredState, r.Status.State = model.TaskRunning, model.TaskFailed
	}
	return v
}

// assertNoAliasing fails if a and b (equal values) share any pointer, map or
// slice backing array: what a deep copy must not do.
func assertNoAliasing(t *testing.T, a, b any) {
	t.Helper()
	var walk func(path string, x, y reflect.Value)
	walk = func(path string, x, y reflect.Value) {
		switch x.Kind() {
		case reflect.Pointer:
			if x.IsNil() {
				return
			}
			if x.Pointer() == y.Pointer() {
				t.Errorf("%s: pointer shared", path)
				return
			}
			walk(path, x.Elem(), y.Elem())
		case reflect.Map:
			if x.IsNil() {
				return
			}
			if x.Pointer() == y.Pointer() {
				t.Errorf("%s: map shared", path)
				return
			}
			for _, k := range x.MapKeys() {
				walk(fmt.Sprintf("%s[%v]", path, k), x.MapIndex(k), y.MapIndex(k))
			}
		case reflect.Slice:
			if x.Len() == 0 {
				return
			}
			if x.Pointer() == y.Pointer() {
				t.Errorf("%s: slice shared", path)
				return
			}
			for i := range x.Len() {
				walk(fmt.Sprintf("%s[%d]", path, i), x.Index(i), y.Index(i))
			}
		case reflect.Struct:
			for i := range x.NumField() {
				if x.Type().Field(i).IsExported() {
					walk(path+"."+x.Type().Field(i).Name, x.Field(i), y.Field(i))
				}
			}
		}
	}
	walk(reflect.TypeOf(a).String(), reflect.ValueOf(a), reflect.ValueOf(b))
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// commit runs fn in a write transaction at index and fails the test on error.
func commit(t testing.TB, s *Store, index uint64, fn func(*WriteTxn) error) {
	t.Helper()
	if err := s.Update(index, fn); err != nil {
		t.Fatalf("write at %d: %v", index, err)
	}
}

func ptr[T any](v T) *T { return &v }
