/* Benchmark kernel matmul: int32 matrix multiply in the cache-friendly i-k-j
 * order, n times on 128 x 128 matrices, each product seeding the next. Stresses
 * loads, stores and multiply-adds in tight nested loops. */

/* run.rb sizes: full 400, quick 25 (full takes 100-300 ms natively). */

#define MAT 128

static unsigned a[MAT * MAT], b[MAT * MAT], c[MAT * MAT];

static void multiply(void) {
  for (unsigned i = 0; i < MAT * MAT; i++) c[i] = 0;
  for (unsigned i = 0; i < MAT; i++)
    for (unsigned k = 0; k < MAT; k++) {
      unsigned aik = a[i * MAT + k];
      for (unsigned j = 0; j < MAT; j++) c[i * MAT + j] += aik * b[k * MAT + j];
    }
}

unsigned bench_matmul(int n) {
  unsigned seed = 12345;
  for (unsigned i = 0; i < MAT * MAT; i++) {
    seed = seed * 1103515245u + 12345u;
    a[i] = seed >> 16 & 0xff;
    seed = seed * 1103515245u + 12345u;
    b[i] = seed >> 16 & 0xff;
  }
  for (int rep = 0; rep < n; rep++) {
    multiply();
    for (unsigned i = 0; i < MAT * MAT; i++) a[i] = (c[i] ^ c[i] >> 11) & 0xff;
  }
  unsigned h = 0;
  for (unsigned i = 0; i < MAT * MAT; i++) h = h * 31 + c[i];
  return h;
}
