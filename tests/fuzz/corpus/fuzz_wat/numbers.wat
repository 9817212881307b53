(module
  (func (export "n") (result f64)
    (drop (f32.const 0x1.fffffep127)) (drop (f32.const nan:0x200000)) (drop (f32.const -inf))
    (drop (i64.const 0xffff_ffff_ffff_ffff)) (drop (i32.const -0x8000_0000))
    (drop (f64.const 1e-324)) (drop (f64.const 0x1p-1074)) (drop (f32.const 1.5e+38))
    (f64.const 123_456.789e-2)))
