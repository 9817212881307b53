/* Benchmark kernel mandel: double-precision compare-and-branch loops. Escape
 * iteration counts of the Mandelbrot set on an n x n grid. */

/* run.rb sizes: full 1400, quick 350 (full takes 100-300 ms natively). */

#define MANDEL_ITER 100

unsigned bench_mandel(int n) {
  unsigned size = n < 1 ? 1u : (unsigned)n;
  unsigned h = 0;
  for (unsigned py = 0; py < size; py++) {
    double ci = -1.25 + 2.5 * (double)py / (double)size;
    for (unsigned px = 0; px < size; px++) {
      double cr = -2.0 + 2.5 * (double)px / (double)size;
      double zr = 0, zi = 0, zr2 = 0, zi2 = 0;
      unsigned it = 0;
      while (it < MANDEL_ITER && zr2 + zi2 <= 4.0) {
        zi = 2.0 * zr * zi + ci;
        zr = zr2 - zi2 + cr;
        zr2 = zr * zr;
        zi2 = zi * zi;
        it++;
      }
      h = h * 16777619u ^ it;
    }
  }
  return h;
}
