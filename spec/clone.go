package spec

import "reflect"

// Clone deep-copies a spec value. The package has no copy methods and grows
// fields over time; a reflective copy stays deep whatever it adds, where a
// hand-written one would silently turn shallow. Spec values are copied once
// per service or stack write, so the cost does not matter; the hot rows
// (tasks) have hand-written Copy methods.
func Clone[T any](v *T) *T {
	if v == nil {
		return nil
	}
	out := new(T)
	cloneValue(reflect.ValueOf(out).Elem(), reflect.ValueOf(v).Elem())
	return out
}

// cloneValue copies src into dst, which is settable and of the same type,
// sharing no pointer, map or slice with src. Structs with unexported fields
// (time.Time) are values with no shared mutable state in practice and are
// copied whole.
func cloneValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		cloneValue(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			k := reflect.New(src.Type().Key()).Elem()
			cloneValue(k, it.Key())
			v := reflect.New(src.Type().Elem()).Elem()
			cloneValue(v, it.Value())
			m.SetMapIndex(k, v)
		}
		dst.Set(m)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			cloneValue(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Array:
		for i := range src.Len() {
			cloneValue(dst.Index(i), src.Index(i))
		}
	case reflect.Interface:
		if src.IsNil() {
			return
		}
		v := reflect.New(src.Elem().Type()).Elem()
		cloneValue(v, src.Elem())
		dst.Set(v)
	case reflect.Struct:
		t := src.Type()
		for i := range t.NumField() {
			if !t.Field(i).IsExported() {
				dst.Set(src)
				return
			}
		}
		for i := range t.NumField() {
			cloneValue(dst.Field(i), src.Field(i))
		}
	default:
		dst.Set(src)
	}
}
