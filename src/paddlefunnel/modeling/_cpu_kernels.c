/* Fused, multi-threaded CPU kernels for the dynamic graph (modeling/cpu_kernels.py loads them with ctypes).
 *
 * Why they exist (benchmarks/RESULTS.md "Training step"): Paddle 3.3 runs its element-wise, copy and layer-norm
 * kernels on one thread, one full pass over memory per op, so in a training step on the CPU they take a third of
 * the time the matrix products take. Each function here does in one multi-threaded pass what took several Paddle
 * ops. All tensors are float32, dense, row-major; lengths are int64. Threads: on the OpenMP runtime the loader
 * hands over (`pf_set_runtime`), as many as `pf_set_threads` said (the dynamic graph's own count).
 *
 * Plain C on purpose: no Paddle or Python headers, so it builds in a second with any C compiler and does not
 * depend on Paddle's C++ ABI. Inner loops are compiled for AVX-512, AVX2 and baseline x86-64 and picked at load
 * time (target_clones), so a wheel built on one machine still runs on another.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PF_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PF_CLONES
#endif

/* The OpenMP runtime the parallel loops run on, chosen by the loader: the one Paddle's MKL already uses (its
 * libiomp5), so that our threads and MKL's never run side by side. Two runtimes in one process fight over the
 * cores: measured, a layer norm of [4096, 768] after a matrix product took 14 ms more with libgomp's threads
 * against libiomp5's (which keep spinning for 200 ms after each MKL call) than on one runtime. */
typedef void (*pf_parallel_fn)(void (*)(void *), void *, unsigned, unsigned); /* GOMP_parallel's ABI */
typedef int (*pf_int_fn)(void);
static pf_parallel_fn pf_parallel;
static pf_int_fn pf_thread_num, pf_num_threads;
static int pf_thread_count = 1;

void pf_set_runtime(void *parallel, void *thread_num, void *num_threads) {
    pf_parallel = (pf_parallel_fn)parallel;
    pf_thread_num = (pf_int_fn)thread_num;
    pf_num_threads = (pf_int_fn)num_threads;
}

void pf_set_threads(int count) { pf_thread_count = count > 0 ? count : 1; }

int pf_get_threads(void) { return pf_thread_count; }

int pf_abi_version(void) { return 2; }

/* A body runs once per thread with (its arguments, thread index t, thread count n) and takes its own share. */
typedef void (*pf_body_fn)(const void *args, int t, int n);
struct pf_job {
    pf_body_fn body;
    const void *args;
};

static void pf_trampoline(void *data) {
    const struct pf_job *job = data;
    job->body(job->args, pf_thread_num(), pf_num_threads());
}

/* Below this many floats of work a call runs on the calling thread: waking the team costs more than it saves, and
 * MKL's runtime then keeps the woken threads spinning for 200 ms on cores that others (PyTorch's threads in the
 * same process, in the tests) need: the test suite, whose models are tiny, ran 2.5x slower without this. */
#define PF_PARALLEL_MIN_WORK 65536

static void pf_run(pf_body_fn body, const void *args, int64_t work) {
    if (pf_thread_count == 1 || !pf_parallel || work < PF_PARALLEL_MIN_WORK) {
        body(args, 0, 1);
        return;
    }
    struct pf_job job = {body, args};
    pf_parallel(pf_trampoline, &job, (unsigned)pf_thread_count, 0);
}

static inline int64_t pf_share(int64_t count, int t, int n) { return count * t / n; }

/* ---- layer norm over the last axis ------------------------------------------------------------------------- */

PF_CLONES static void layer_norm_row(const float *x, const float *weight, const float *bias, float *y,
                                     float *mean_out, float *rstd_out, int64_t width, float epsilon) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < width; ++i) sum += x[i];
    const float mean = sum / (float)width;
    float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
    for (int64_t i = 0; i < width; ++i) {
        const float d = x[i] - mean;
        squares += d * d;
    }
    const float rstd = 1.0f / sqrtf(squares / (float)width + epsilon);
    for (int64_t i = 0; i < width; ++i) y[i] = (x[i] - mean) * rstd * weight[i] + bias[i];
    *mean_out = mean;
    *rstd_out = rstd;
}

struct layer_norm_args {
    const float *x, *weight, *bias, *grad;
    float *y, *mean, *rstd, *grad_x;
    double *partial;
    const float *saved_mean, *saved_rstd;
    int64_t rows, width;
    float epsilon;
};

static void layer_norm_forward_body(const void *raw, int t, int n) {
    const struct layer_norm_args *a = raw;
    for (int64_t r = pf_share(a->rows, t, n); r < pf_share(a->rows, t + 1, n); ++r)
        layer_norm_row(a->x + r * a->width, a->weight, a->bias, a->y + r * a->width, a->mean + r, a->rstd + r,
                       a->width, a->epsilon);
}

/* y = (x - mean) / sqrt(var + eps) * weight + bias per row; keeps each row's mean and 1/std for the backward. */
void pf_layer_norm_forward(const float *x, const float *weight, const float *bias, float *y, float *mean,
                           float *rstd, int64_t rows, int64_t width, float epsilon) {
    struct layer_norm_args a = {.x = x, .weight = weight, .bias = bias, .y = y, .mean = mean, .rstd = rstd,
                                .rows = rows, .width = width, .epsilon = epsilon};
    pf_run(layer_norm_forward_body, &a, rows * width);
}

/* One row's input gradient; adds the row's share of the weight and bias gradients into the thread's sums. */
PF_CLONES static void layer_norm_grad_row(const float *grad, const float *x, const float *weight, float mean,
                                          float rstd, float *grad_x, double *grad_weight, double *grad_bias,
                                          int64_t width) {
    float sum_g = 0.0f, sum_gx = 0.0f;
#pragma omp simd reduction(+ : sum_g, sum_gx)
    for (int64_t i = 0; i < width; ++i) {
        const float normalized = (x[i] - mean) * rstd;
        const float g = grad[i] * weight[i];
        sum_g += g;
        sum_gx += g * normalized;
        grad_weight[i] += grad[i] * normalized;
        grad_bias[i] += grad[i];
    }
    const float mean_g = sum_g / (float)width, mean_gx = sum_gx / (float)width;
    for (int64_t i = 0; i < width; ++i) {
        const float normalized = (x[i] - mean) * rstd;
        grad_x[i] = rstd * (grad[i] * weight[i] - mean_g - normalized * mean_gx);
    }
}

/* Sums over rows are kept in double: a bias's gradient adds up thousands of rows (float sums of 1,000 normal
 * values were off by 2e-5 from NumPy's pairwise ones). */
PF_CLONES static void add_row(double *into, const float *from, int64_t width) {
    for (int64_t i = 0; i < width; ++i) into[i] += from[i];
}

/* out = the sum of `count` double rows, spaced `stride` apart, rounded to float. */
static void sum_partials(float *out, const double *partial, int count, int64_t stride, int64_t width) {
    for (int64_t i = 0; i < width; ++i) {
        double total = 0.0;
        for (int t = 0; t < count; ++t) total += partial[t * stride + i];
        out[i] = (float)total;
    }
}

static void layer_norm_backward_body(const void *raw, int t, int n) {
    const struct layer_norm_args *a = raw;
    const int64_t width = a->width;
    double *grad_weight = a->partial + (size_t)t * 2 * width, *grad_bias = grad_weight + width;
    for (int64_t r = pf_share(a->rows, t, n); r < pf_share(a->rows, t + 1, n); ++r)
        layer_norm_grad_row(a->grad + r * width, a->x + r * width, a->weight, a->saved_mean[r], a->saved_rstd[r],
                            a->grad_x + r * width, grad_weight, grad_bias, width);
}

/* Gradients of pf_layer_norm_forward. Each thread sums weight / bias gradients over its rows, then they are added.
 * Returns -1 when the per-thread sums could not be allocated. */
int pf_layer_norm_backward(const float *grad, const float *x, const float *weight, const float *mean,
                           const float *rstd, float *grad_x, float *grad_weight, float *grad_bias, int64_t rows,
                           int64_t width) {
    const int threads = pf_thread_count;
    double *partial = calloc((size_t)threads * 2 * (size_t)width, sizeof(double));
    if (!partial) return -1;
    struct layer_norm_args a = {.grad = grad, .x = x, .weight = weight, .saved_mean = mean, .saved_rstd = rstd,
                                .grad_x = grad_x, .partial = partial, .rows = rows, .width = width};
    pf_run(layer_norm_backward_body, &a, rows * width);
    sum_partials(grad_weight, partial, threads, 2 * width, width);
    sum_partials(grad_bias, partial + width, threads, 2 * width, width);
    free(partial);
    return 0;
}

/* ---- column sums (a bias's gradient) ----------------------------------------------------------------------- */

struct column_sum_args {
    const float *x;
    double *partial;
    int64_t rows, width;
};

static void column_sum_body(const void *raw, int t, int n) {
    const struct column_sum_args *a = raw;
    double *mine = a->partial + (size_t)t * a->width;
    for (int64_t r = pf_share(a->rows, t, n); r < pf_share(a->rows, t + 1, n); ++r)
        add_row(mine, a->x + r * a->width, a->width);
}

/* out[j] = sum over rows of x[r, j]. Returns -1 when the per-thread sums could not be allocated. */
int pf_column_sum(const float *x, float *out, int64_t rows, int64_t width) {
    const int threads = pf_thread_count;
    double *partial = calloc((size_t)threads * (size_t)width, sizeof(double));
    if (!partial) return -1;
    struct column_sum_args a = {x, partial, rows, width};
    pf_run(column_sum_body, &a, rows * width);
    sum_partials(out, partial, threads, width, width);
    free(partial);
    return 0;
}

/* ---- dropout ------------------------------------------------------------------------------------------------ */

/* A counter-based generator: element i's uniform depends only on (key, i), so the backward redraws the forward's
 * mask instead of keeping it, and the result does not depend on the thread count. Two rounds of a 32-bit integer
 * hash with full avalanche (lowbias32: every output bit depends on every input bit), keyed by the 64-bit key
 * between and before them; 32-bit so that it vectorises (16 lanes with AVX-512). 24 bits make the uniform. */
static inline uint32_t pf_hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352DU;
    x ^= x >> 15;
    x *= 0x846CA68BU;
    return x ^ (x >> 16);
}

static inline uint32_t pf_draw(uint64_t key, int64_t i) {
    const uint32_t low_key = (uint32_t)key, high_key = (uint32_t)(key >> 32) + 0x9E3779B9U * (uint32_t)(i >> 32);
    return pf_hash32(pf_hash32((uint32_t)i ^ low_key) ^ high_key) >> 8;
}

struct dropout_args {
    const float *x;
    float *y;
    int64_t count;
    uint64_t key;
    float p, scale;
};

PF_CLONES static void dropout_span(const float *restrict x, float *restrict y, int64_t first, int64_t last,
                                   uint64_t key, uint32_t threshold, float scale) {
    for (int64_t i = first; i < last; ++i) y[i] = x[i] * (pf_draw(key, i) >= threshold ? scale : 0.0f);
}

static void dropout_body(const void *raw, int t, int n) {
    const struct dropout_args *a = raw;
    /* uniform = draw / 2^24 >= p  <=>  draw >= ceil(p * 2^24) (both sides exact in float) */
    const uint32_t threshold = (uint32_t)ceilf(a->p * 16777216.0f);
    dropout_span(a->x, a->y, pf_share(a->count, t, n), pf_share(a->count, t + 1, n), a->key, threshold, a->scale);
}

/* y = x * keep / (1 - p), keep = (uniform(key, i) >= p). The same call on the output's gradient is the backward. */
void pf_dropout(const float *x, float *y, int64_t count, uint64_t key, float p, float scale) {
    struct dropout_args a = {x, y, count, key, p, scale};
    pf_run(dropout_body, &a, count);
}

/* ---- the relative shift ------------------------------------------------------------------------------------- */

/* The relative shift (positions.relative_shift and its banded form): each of `planes` planes holds `n_chunks`
 * chunks of [chunk, width] scores of queries against distances; row r of chunk k is query i = k * chunk + r, and
 * its scores against keys 0..keys-1 start at offset shift * chunk + r * (width - shift) of the chunk's buffer.
 * out: [planes, q_len, keys] (q_len <= n_chunks * chunk; the padding queries of a last chunk are not read). */
struct shift_args {
    const float *from;
    float *to;
    int64_t planes, n_chunks, chunk, width, shift, q_len, keys;
};

static void relative_shift_body(const void *raw, int t, int n) {
    const struct shift_args *a = raw;
    const int64_t rows = a->planes * a->q_len;
    for (int64_t row = pf_share(rows, t, n); row < pf_share(rows, t + 1, n); ++row) {
        const int64_t plane = row / a->q_len, i = row % a->q_len, k = i / a->chunk, r = i % a->chunk;
        const float *from = a->from + (plane * a->n_chunks + k) * a->chunk * a->width + a->shift * a->chunk
                            + r * (a->width - a->shift);
        memcpy(a->to + row * a->keys, from, (size_t)a->keys * sizeof(float));
    }
}

void pf_relative_shift(const float *in, float *out, int64_t planes, int64_t n_chunks, int64_t chunk, int64_t width,
                       int64_t shift, int64_t q_len, int64_t keys) {
    struct shift_args a = {in, out, planes, n_chunks, chunk, width, shift, q_len, keys};
    pf_run(relative_shift_body, &a, planes * q_len * keys);
}

/* Gradient: rows never overlap (width - shift >= keys), so it is a scatter into a zeroed buffer, chunk by chunk. */
static void relative_shift_backward_body(const void *raw, int t, int n) {
    const struct shift_args *a = raw;
    const int64_t blocks = a->planes * a->n_chunks, size = a->chunk * a->width;
    for (int64_t block = pf_share(blocks, t, n); block < pf_share(blocks, t + 1, n); ++block) {
        const int64_t plane = block / a->n_chunks, k = block % a->n_chunks;
        float *buffer = a->to + block * size;
        memset(buffer, 0, (size_t)size * sizeof(float));
        for (int64_t r = 0; r < a->chunk && k * a->chunk + r < a->q_len; ++r)
            memcpy(buffer + a->shift * a->chunk + r * (a->width - a->shift),
                   a->from + (plane * a->q_len + k * a->chunk + r) * a->keys, (size_t)a->keys * sizeof(float));
    }
}

void pf_relative_shift_backward(const float *grad_out, float *grad_in, int64_t planes, int64_t n_chunks,
                                int64_t chunk, int64_t width, int64_t shift, int64_t q_len, int64_t keys) {
    struct shift_args a = {grad_out, grad_in, planes, n_chunks, chunk, width, shift, q_len, keys};
    pf_run(relative_shift_backward_body, &a, planes * n_chunks * chunk * width);
}

/* ---- a bias added to every row ------------------------------------------------------------------------------ */

struct rows_args {
    const float *x, *other;
    float *y;
    int64_t rows, width;
};

PF_CLONES static void add_bias_row(const float *restrict x, const float *restrict bias, float *restrict y,
                                   int64_t width) {
    for (int64_t i = 0; i < width; ++i) y[i] = x[i] + bias[i];
}

static void add_bias_body(const void *raw, int t, int n) {
    const struct rows_args *a = raw;
    for (int64_t r = pf_share(a->rows, t, n); r < pf_share(a->rows, t + 1, n); ++r)
        add_bias_row(a->x + r * a->width, a->other, a->y + r * a->width, a->width);
}

/* y[r, :] = x[r, :] + bias (Paddle's broadcasting add is ~10x slower than a same-shape one on the CPU). */
void pf_add_bias(const float *x, const float *bias, float *y, int64_t rows, int64_t width) {
    struct rows_args a = {x, bias, y, rows, width};
    pf_run(add_bias_body, &a, rows * width);
}

/* ---- swapping the two middle axes (splitting and merging attention heads) ------------------------------------ */

struct swap_args {
    const float *x;
    float *y;
    int64_t outer, m, n, inner;
};

static void swap_body(const void *raw, int t, int threads) {
    const struct swap_args *a = raw;
    const int64_t rows = a->outer * a->n; /* output rows of m * inner floats */
    for (int64_t row = pf_share(rows, t, threads); row < pf_share(rows, t + 1, threads); ++row) {
        const int64_t o = row / a->n, j = row % a->n;
        const float *from = a->x + (o * a->m * a->n + j) * a->inner;
        float *to = a->y + row * a->m * a->inner;
        for (int64_t i = 0; i < a->m; ++i)
            memcpy(to + i * a->inner, from + i * a->n * a->inner, (size_t)a->inner * sizeof(float));
    }
}

/* [outer, m, n, inner] -> [outer, n, m, inner]: [B, L, H, D] -> [B, H, L, D] splits heads, the reverse merges. */
void pf_swap_middle(const float *x, float *y, int64_t outer, int64_t m, int64_t n, int64_t inner) {
    struct swap_args a = {x, y, outer, m, n, inner};
    pf_run(swap_body, &a, outer * m * n * inner);
}

/* ---- exp, softmax and GELU ---------------------------------------------------------------------------------- */

/* e^x in float, written out so that loops over it vectorise (libm's expf does not without -ffast-math): x = n ln2 + r
 * with |r| <= ln2 / 2 (ln2 split in two for an exact product), e^r by its degree-6 Taylor polynomial (truncation
 * error below 2e-8 relative), 2^n put into the exponent bits. Within 2 ulp of expf on [-87, 88]; 0 below. */
static inline float pf_exp(float x) {
    const float clamped = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* adding and subtracting 1.5 * 2^23 rounds to the nearest integer (|value| < 2^22 here) */
    const float n = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (clamped - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < -87.0f ? 0.0f : p * scale;
}

PF_CLONES static void softmax_row(const float *restrict x, float *restrict y, int64_t width) {
    float top = -INFINITY;
#pragma omp simd reduction(max : top)
    for (int64_t i = 0; i < width; ++i) top = x[i] > top ? x[i] : top;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < width; ++i) {
        y[i] = pf_exp(x[i] - top);
        sum += y[i];
    }
    const float inverse = 1.0f / sum;
    for (int64_t i = 0; i < width; ++i) y[i] *= inverse;
}

static void softmax_body(const void *raw, int t, int n) {
    const struct rows_args *a = raw;
    for (int64_t r = pf_share(a->rows, t, n); r < pf_share(a->rows, t + 1, n); ++r)
        softmax_row(a->x + r * a->width, a->y + r * a->width, a->width);
}

/* Softmax over the last axis of [rows, width]. */
void pf_softmax(const float *x, float *y, int64_t rows, int64_t width) {
    struct rows_args a = {x, NULL, y, rows, width};
    pf_run(softmax_body, &a, rows * width);
}

PF_CLONES static void softmax_grad_row(const float *restrict grad, const float *restrict probs,
                                       float *restrict grad_x, int64_t width) {
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t i = 0; i < width; ++i) dot += grad[i] * probs[i];
    for (int64_t i = 0; i < width; ++i) grad_x[i] = probs[i] * (grad[i] - dot);
}

static void softmax_grad_body(const void *raw, int t, int n) {
    const struct rows_args *a = raw;
    for (int64_t r = pf_share(a->rows, t, n); r < pf_share(a->rows, t + 1, n); ++r)
        softmax_grad_row(a->x + r * a->width, a->other + r * a->width, a->y + r * a->width, a->width);
}

/* grad_x = probs * (grad - sum(grad * probs)) per row. */
void pf_softmax_backward(const float *grad, const float *probs, float *grad_x, int64_t rows, int64_t width) {
    struct rows_args a = {grad, probs, grad_x, rows, width};
    pf_run(softmax_grad_body, &a, rows * width);
}

/* The tanh approximation of GELU ("gelu_new"): 0.5 x (1 + tanh(u)), u = sqrt(2 / pi) (x + 0.044715 x^3), computed
 * as x s with s = 1 / (1 + e^(-2u)) (the same function: 1 + tanh(u) = 2 s), which stays accurate where tanh(u)
 * rounds to -1 (x below -5: 1 - 2 / (e^(2u) + 1) lost GELU's values there, 6e-7 of them). Gradient:
 * s + 2 x s (1 - s) du/dx, with 1 - s = e^(-2u) s. */
#define PF_GELU_C 0.7978845608028654f /* sqrt(2 / pi) */
#define PF_GELU_A 0.044715f

PF_CLONES static void gelu_span(const float *restrict x, float *restrict y, int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
        const float v = x[i];
        y[i] = v / (1.0f + pf_exp(-2.0f * PF_GELU_C * (v + PF_GELU_A * v * v * v)));
    }
}

PF_CLONES static void gelu_grad_span(const float *restrict grad, const float *restrict x, float *restrict grad_x,
                                     int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
        const float v = x[i], e = pf_exp(-2.0f * PF_GELU_C * (v + PF_GELU_A * v * v * v));
        const float s = 1.0f / (1.0f + e);
        grad_x[i] = grad[i] * (s + 2.0f * v * s * (e * s) * PF_GELU_C * (1.0f + 3.0f * PF_GELU_A * v * v));
    }
}

static void gelu_body(const void *raw, int t, int n) {
    const struct rows_args *a = raw; /* rows = element count */
    gelu_span(a->x, a->y, pf_share(a->rows, t, n), pf_share(a->rows, t + 1, n));
}

static void gelu_grad_body(const void *raw, int t, int n) {
    const struct rows_args *a = raw; /* x: the output's gradient, other: the input */
    gelu_grad_span(a->x, a->other, a->y, pf_share(a->rows, t, n), pf_share(a->rows, t + 1, n));
}

void pf_gelu_tanh(const float *x, float *y, int64_t count) {
    struct rows_args a = {x, NULL, y, count, 1};
    pf_run(gelu_body, &a, count);
}

void pf_gelu_tanh_backward(const float *grad, const float *x, float *grad_x, int64_t count) {
    struct rows_args a = {grad, x, grad_x, count, 1};
    pf_run(gelu_grad_body, &a, count);
}

/* ---- strided row copies (concatenation and its gradient) ---------------------------------------------------- */

struct copy_args {
    const float *from;
    float *to;
    int64_t from_stride, to_stride, rows, width;
};

static void copy_rows_body(const void *raw, int t, int n) {
    const struct copy_args *a = raw;
    for (int64_t r = pf_share(a->rows, t, n); r < pf_share(a->rows, t + 1, n); ++r)
        memcpy(a->to + r * a->to_stride, a->from + r * a->from_stride, (size_t)a->width * sizeof(float));
}

/* to[r * to_stride : + width] = from[r * from_stride : + width] for every row: one input's place in a concatenation
 * (Paddle's concat along the last axis copies small pieces one by one, on one thread), or its gradient's slice. */
void pf_copy_rows(const float *from, int64_t from_stride, float *to, int64_t to_stride, int64_t rows, int64_t width) {
    struct copy_args a = {from, to, from_stride, to_stride, rows, width};
    pf_run(copy_rows_body, &a, rows * width);
}

/* ---- the AdamW update ------------------------------------------------------------------------------------------ */

struct adamw_args {
    float *param, *moment1, *moment2;
    const float *grad;
    int64_t count;
    float beta1, beta2, step, epsilon, decay;
};

/* Paddle's CPU adamw kernel on AVX-512 machines, rounding for rounding (its JIT code, phi/kernels/funcs/jit/gen/
 * adamw.cc: the decay, the moments and the step each end in one fused multiply-add), in place. With decay 0 it is
 * also Paddle's adam kernel (for parameters that are not decayed): p - 0 * p is p. */
PF_CLONES static void adamw_span(const struct adamw_args *a, int64_t begin, int64_t end) {
    const float beta1 = a->beta1, beta2 = a->beta2, step = a->step, epsilon = a->epsilon, decay = a->decay;
    const float rest1 = 1.0f - beta1, rest2 = 1.0f - beta2;
    float *param = a->param, *m1 = a->moment1, *m2 = a->moment2;
    const float *grad = a->grad;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
        const float g = grad[i];
        const float kept = fmaf(-decay, param[i], param[i]);
        const float m = fmaf(beta1, m1[i], rest1 * g);
        const float v = fmaf(beta2, m2[i], rest2 * (g * g));
        m1[i] = m;
        m2[i] = v;
        param[i] = fmaf(m / (sqrtf(v) + epsilon), step, kept);
    }
}

static void adamw_body(const void *raw, int t, int n) {
    const struct adamw_args *a = raw;
    adamw_span(a, pf_share(a->count, t, n), pf_share(a->count, t + 1, n));
}

/* One AdamW step of one parameter, in place, and its two bias-correction powers advanced (they hold beta^t
 * for this step on entry, as Paddle's accumulators do). `decay` = learning rate x weight-decay coefficient (0: no
 * decay). Paddle's own kernel reads and writes the same memory and took 91 ms against 55 ms here for 115M
 * parameters (RESULTS.md "Training step"). */
void pf_adamw(float *param, const float *grad, float *moment1, float *moment2, float *beta1_pow, float *beta2_pow,
              int64_t count, float learning_rate, float beta1, float beta2, float epsilon, float decay) {
    const float b1p = *beta1_pow, b2p = *beta2_pow;
    const float corrected = learning_rate * (sqrtf(1.0f - b2p) / (1.0f - b1p));
    struct adamw_args a = {param, moment1, moment2, grad, count, beta1, beta2, -corrected,
                           epsilon * sqrtf(1.0f - b2p), decay};
    pf_run(adamw_body, &a, count);
    *beta1_pow = beta1 * b1p;
    *beta2_pow = beta2 * b2p;
}
