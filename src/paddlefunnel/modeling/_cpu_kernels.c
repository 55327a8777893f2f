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

int pf_abi_version(void) { return 3; }

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

/* ---- dropout's mask ------------------------------------------------------------------------------------------ */

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

/* uniform = draw / 2^24 >= p  <=>  draw >= ceil(p * 2^24) (both sides exact in float); p = 0 keeps everything. */
static inline uint32_t pf_keep_threshold(float p) { return (uint32_t)ceilf(p * 16777216.0f); }

/* ---- add & norm: layer_norm(residual + dropout(x + bias)) ---------------------------------------------------- */

/* The end of every attention and feed-forward sublayer, as one pass per row instead of four (bias, dropout, the
 * residual sum, layer norm, each a full pass over memory, forward and backward). The dropout mask is element
 * i = row * width + column's draw under `key`, the one pf_dropout draws for the same tensor and key. */
struct add_norm_args {
    const float *x, *bias, *residual, *weight, *ln_bias, *grad, *sum;
    float *sum_out, *y, *mean, *rstd, *grad_sum, *grad_x;
    const float *saved_mean, *saved_rstd;
    double *partial;
    int64_t rows, width;
    uint64_t key;
    uint32_t threshold;
    float scale, epsilon;
};

PF_CLONES static void add_dropped_row(const float *restrict x, const float *restrict bias,
                                      const float *restrict residual, float *restrict sum, int64_t first,
                                      int64_t width, uint64_t key, uint32_t threshold, float scale) {
    if (threshold == 0) { /* no dropout (p = 0: evaluation) */
        for (int64_t i = 0; i < width; ++i) sum[i] = residual[i] + (x[i] + bias[i]);
        return;
    }
    for (int64_t i = 0; i < width; ++i) {
        const float kept = (x[i] + bias[i]) * (pf_draw(key, first + i) >= threshold ? scale : 0.0f);
        sum[i] = residual[i] + kept;
    }
}

static void add_norm_forward_body(const void *raw, int t, int n) {
    const struct add_norm_args *a = raw;
    const int64_t width = a->width;
    for (int64_t r = pf_share(a->rows, t, n); r < pf_share(a->rows, t + 1, n); ++r) {
        float *sum = a->sum_out + r * width;
        add_dropped_row(a->x + r * width, a->bias, a->residual + r * width, sum, r * width, width, a->key,
                        a->threshold, a->scale);
        layer_norm_row(sum, a->weight, a->ln_bias, a->y + r * width, a->mean + r, a->rstd + r, width, a->epsilon);
    }
}

/* sum = residual + dropout(x + bias) (kept for the backward), y = layer_norm(sum); dropout keeps an element when
 * its draw is at least p (scale = 1 / (1 - p); p = 0, scale = 1: no dropout). */
void pf_add_norm_forward(const float *x, const float *bias, const float *residual, const float *weight,
                         const float *ln_bias, float *sum, float *y, float *mean, float *rstd, int64_t rows,
                         int64_t width, uint64_t key, float p, float scale, float epsilon) {
    struct add_norm_args a = {.x = x, .bias = bias, .residual = residual, .weight = weight, .ln_bias = ln_bias,
                              .sum_out = sum, .y = y, .mean = mean, .rstd = rstd, .rows = rows, .width = width,
                              .key = key, .threshold = pf_keep_threshold(p), .scale = scale, .epsilon = epsilon};
    pf_run(add_norm_forward_body, &a, rows * width);
}

/* grad_x = grad_sum through the dropout mask. */
PF_CLONES static void dropped_grad_row(const float *restrict grad_sum, float *restrict grad_x, int64_t first,
                                       int64_t width, uint64_t key, uint32_t threshold, float scale) {
    for (int64_t i = 0; i < width; ++i) grad_x[i] = grad_sum[i] * (pf_draw(key, first + i) >= threshold ? scale : 0.0f);
}

static void add_norm_backward_body(const void *raw, int t, int n) {
    const struct add_norm_args *a = raw;
    const int64_t width = a->width;
    double *grad_weight = a->partial + (size_t)t * 3 * width, *grad_ln_bias = grad_weight + width;
    double *grad_bias = grad_ln_bias + width;
    for (int64_t r = pf_share(a->rows, t, n); r < pf_share(a->rows, t + 1, n); ++r) {
        float *grad_sum = a->grad_sum + r * width;
        layer_norm_grad_row(a->grad + r * width, a->sum + r * width, a->weight, a->saved_mean[r], a->saved_rstd[r],
                            grad_sum, grad_weight, grad_ln_bias, width);
        float *grad_x = a->grad_x + r * width;
        dropped_grad_row(grad_sum, grad_x, r * width, width, a->key, a->threshold, a->scale);
        add_row(grad_bias, grad_x, width); /* the bias's gradient: separate loop, as the row is still in L1 */
    }
}

/* Gradients of pf_add_norm_forward: grad_sum is the residual's, grad_x the input's; weight, layer-norm bias and
 * bias gradients summed over rows. Returns -1 when the per-thread sums could not be allocated. */
int pf_add_norm_backward(const float *grad, const float *sum, const float *weight, const float *mean,
                         const float *rstd, float *grad_sum, float *grad_x, float *grad_weight, float *grad_ln_bias,
                         float *grad_bias, int64_t rows, int64_t width, uint64_t key, float p, float scale) {
    const int threads = pf_thread_count;
    double *partial = calloc((size_t)threads * 3 * (size_t)width, sizeof(double));
    if (!partial) return -1;
    struct add_norm_args a = {.grad = grad, .sum = sum, .weight = weight, .saved_mean = mean, .saved_rstd = rstd,
                              .grad_sum = grad_sum, .grad_x = grad_x, .partial = partial, .rows = rows,
                              .width = width, .key = key, .threshold = pf_keep_threshold(p), .scale = scale};
    pf_run(add_norm_backward_body, &a, rows * width);
    sum_partials(grad_weight, partial, threads, 3 * width, width);
    sum_partials(grad_ln_bias, partial + width, threads, 3 * width, width);
    sum_partials(grad_bias, partial + 2 * width, threads, 3 * width, width);
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
    dropout_span(a->x, a->y, pf_share(a->count, t, n), pf_share(a->count, t + 1, n), a->key,
                 pf_keep_threshold(a->p), a->scale);
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

/* ---- biased heads: splitting a projection into heads with a bias (or several) added ------------------------- */

/* out_k[b, h, l, :] = x[b, l, h, :] * scale + bias_k[h, :] * scale for k < count (at most 3): a projection's bias,
 * or the query's three per-head biases of relative attention (content, position, token type), added while the
 * [B, L, H * D] projection is split into [B, H, L, D] heads, in the pass the split takes anyway. */
#define PF_MAX_BIASES 3
struct heads_args {
    const float *x, *bias[PF_MAX_BIASES], *grad[PF_MAX_BIASES];
    float *out[PF_MAX_BIASES], *grad_x;
    double *partial;
    int count;
    int64_t batch, len, heads, d_head;
    float scale;
};

PF_CLONES static void biased_span(const float *restrict x, const float *restrict bias, float *restrict out,
                                  int64_t width, float scale) {
    for (int64_t i = 0; i < width; ++i) out[i] = x[i] * scale + bias[i] * scale;
}

static void heads_forward_body(const void *raw, int t, int n) {
    const struct heads_args *a = raw;
    const int64_t rows = a->batch * a->len, d = a->d_head, width = a->heads * d;
    for (int64_t row = pf_share(rows, t, n); row < pf_share(rows, t + 1, n); ++row) {
        const int64_t b = row / a->len, l = row % a->len;
        for (int k = 0; k < a->count; ++k)
            for (int64_t h = 0; h < a->heads; ++h)
                biased_span(a->x + row * width + h * d, a->bias[k] + h * d,
                            a->out[k] + ((b * a->heads + h) * a->len + l) * d, d, a->scale);
    }
}

void pf_biased_heads(const float *x, const float *bias0, const float *bias1, const float *bias2, float *out0,
                     float *out1, float *out2, int count, int64_t batch, int64_t len, int64_t heads, int64_t d_head,
                     float scale) {
    struct heads_args a = {.x = x, .bias = {bias0, bias1, bias2}, .out = {out0, out1, out2}, .count = count,
                           .batch = batch, .len = len, .heads = heads, .d_head = d_head, .scale = scale};
    pf_run(heads_forward_body, &a, batch * len * heads * d_head * count);
}

PF_CLONES static void scaled_sum_span(const float *restrict g0, const float *restrict g1, const float *restrict g2,
                                      float *restrict out, int64_t width, float scale) {
    if (g2)
        for (int64_t i = 0; i < width; ++i) out[i] = ((g0[i] + g1[i]) + g2[i]) * scale;
    else if (g1)
        for (int64_t i = 0; i < width; ++i) out[i] = (g0[i] + g1[i]) * scale;
    else
        for (int64_t i = 0; i < width; ++i) out[i] = g0[i] * scale;
}

static void heads_backward_body(const void *raw, int t, int n) {
    const struct heads_args *a = raw;
    const int64_t rows = a->batch * a->len, d = a->d_head, width = a->heads * d;
    double *partial = a->partial + (size_t)t * a->count * width;
    for (int64_t row = pf_share(rows, t, n); row < pf_share(rows, t + 1, n); ++row) {
        const int64_t b = row / a->len, l = row % a->len;
        for (int64_t h = 0; h < a->heads; ++h) {
            const int64_t from = ((b * a->heads + h) * a->len + l) * d;
            const float *g[PF_MAX_BIASES] = {NULL, NULL, NULL};
            for (int k = 0; k < a->count; ++k) {
                g[k] = a->grad[k] + from;
                add_row(partial + k * width + h * d, g[k], d);
            }
            scaled_sum_span(g[0], g[1], g[2], a->grad_x + row * width + h * d, d, a->scale);
        }
    }
}

/* grad_x[b, l, h, :] = scale * sum_k grad_k[b, h, l, :]; grad_bias_k = scale * the sum of grad_k over b and l.
 * Returns -1 when the per-thread sums could not be allocated. */
int pf_biased_heads_backward(const float *grad0, const float *grad1, const float *grad2, float *grad_x,
                             float *grad_bias0, float *grad_bias1, float *grad_bias2, int count, int64_t batch,
                             int64_t len, int64_t heads, int64_t d_head, float scale) {
    const int threads = pf_thread_count;
    const int64_t width = heads * d_head;
    double *partial = calloc((size_t)threads * (size_t)count * (size_t)width, sizeof(double));
    if (!partial) return -1;
    struct heads_args a = {.grad = {grad0, grad1, grad2}, .grad_x = grad_x, .partial = partial, .count = count,
                           .batch = batch, .len = len, .heads = heads, .d_head = d_head, .scale = scale};
    pf_run(heads_backward_body, &a, batch * len * width * count);
    float *grad_bias[PF_MAX_BIASES] = {grad_bias0, grad_bias1, grad_bias2};
    for (int k = 0; k < count; ++k) {
        sum_partials(grad_bias[k], partial + k * width, threads, (int64_t)count * width, width);
        for (int64_t i = 0; i < width; ++i) grad_bias[k][i] *= scale;
    }
    free(partial);
    return 0;
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

/* x may be y (in place). */
PF_CLONES static void softmax_row(const float *x, float *y, int64_t width) {
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

/* e^(-2u): the one exponential both GELU's value and its slope need. */
static inline float gelu_exp(float v) { return pf_exp(-2.0f * PF_GELU_C * (v + PF_GELU_A * v * v * v)); }

static inline float gelu_slope_from(float v, float e) {
    const float s = 1.0f / (1.0f + e);
    return s + 2.0f * v * s * (e * s) * PF_GELU_C * (1.0f + 3.0f * PF_GELU_A * v * v);
}

static inline float gelu_value(float v) { return v / (1.0f + gelu_exp(v)); }

static inline float gelu_slope(float v) { return gelu_slope_from(v, gelu_exp(v)); }

PF_CLONES static void gelu_span(const float *restrict x, float *restrict y, int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) y[i] = gelu_value(x[i]);
}

PF_CLONES static void gelu_grad_span(const float *restrict grad, const float *restrict x, float *restrict grad_x,
                                     int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) grad_x[i] = grad[i] * gelu_slope(x[i]);
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

/* GELU of a biased product, gelu(x + bias) with x [rows, width] and bias [width]: the feed-forward layer's first
 * half in one pass each way instead of two (the bias's addition, then GELU; in the backward GELU's gradient, then
 * its column sums for the bias). For training the forward also keeps GELU's slope at each input, computed from the
 * same exponential as the value, so the backward is a product and a column sum: it had been compute-bound on
 * recomputing the exponential and a division (1.4 ms for [1024, 3072] on two threads, against 0.2 ms for a pass
 * that reads and writes the same memory). */
struct bias_gelu_args {
    const float *x, *bias, *grad;
    float *y, *slope, *grad_x;
    double *partial;
    int64_t rows, width;
};

PF_CLONES static void bias_gelu_row(const float *restrict x, const float *restrict bias, float *restrict y,
                                    int64_t width) {
    for (int64_t i = 0; i < width; ++i) y[i] = gelu_value(x[i] + bias[i]);
}

PF_CLONES static void bias_gelu_slope_row(const float *restrict x, const float *restrict bias, float *restrict y,
                                          float *restrict slope, int64_t width) {
    for (int64_t i = 0; i < width; ++i) {
        const float v = x[i] + bias[i], e = gelu_exp(v);
        y[i] = v / (1.0f + e); /* gelu_value(v) and gelu_slope(v), sharing the exponential */
        slope[i] = gelu_slope_from(v, e);
    }
}

PF_CLONES static void product_row(const float *restrict a, const float *restrict b, float *restrict out,
                                  int64_t width) {
    for (int64_t i = 0; i < width; ++i) out[i] = a[i] * b[i];
}

static void bias_gelu_body(const void *raw, int t, int n) {
    const struct bias_gelu_args *a = raw;
    for (int64_t r = pf_share(a->rows, t, n); r < pf_share(a->rows, t + 1, n); ++r) {
        if (a->slope)
            bias_gelu_slope_row(a->x + r * a->width, a->bias, a->y + r * a->width, a->slope + r * a->width,
                                a->width);
        else
            bias_gelu_row(a->x + r * a->width, a->bias, a->y + r * a->width, a->width);
    }
}

static void bias_gelu_grad_body(const void *raw, int t, int n) {
    const struct bias_gelu_args *a = raw;
    double *grad_bias = a->partial + (size_t)t * a->width;
    for (int64_t r = pf_share(a->rows, t, n); r < pf_share(a->rows, t + 1, n); ++r) {
        float *grad_x = a->grad_x + r * a->width;
        product_row(a->grad + r * a->width, a->slope + r * a->width, grad_x, a->width);
        add_row(grad_bias, grad_x, a->width);
    }
}

/* y = gelu(x + bias); `slope` (or NULL: not wanted) gets GELU's derivative at x + bias. */
void pf_bias_gelu_tanh(const float *x, const float *bias, float *y, float *slope, int64_t rows, int64_t width) {
    struct bias_gelu_args a = {.x = x, .bias = bias, .y = y, .slope = slope, .rows = rows, .width = width};
    pf_run(bias_gelu_body, &a, rows * width);
}

/* grad_x = grad * slope: the gradient of x (and of x + bias); grad_bias its column sums. Returns -1 when the
 * per-thread sums could not be allocated. */
int pf_bias_gelu_tanh_backward(const float *grad, const float *slope, float *grad_x, float *grad_bias, int64_t rows,
                               int64_t width) {
    const int threads = pf_thread_count;
    double *partial = calloc((size_t)threads * (size_t)width, sizeof(double));
    if (!partial) return -1;
    struct bias_gelu_args a = {.grad = grad, .slope = (float *)slope, .grad_x = grad_x, .partial = partial,
                               .rows = rows, .width = width};
    pf_run(bias_gelu_grad_body, &a, rows * width);
    sum_partials(grad_bias, partial, threads, width, width);
    free(partial);
    return 0;
}

/* ---- attention probabilities from their score terms --------------------------------------------------------- */

/* softmax(content + position + token type + mask) of relative attention in one pass over the [planes, q_len, keys]
 * scores (plane = batch * heads + head), where it took a sum, a shift, concatenated factors and a softmax:
 * - content: [planes, q_len, keys], the content (q . k) term;
 * - position: the position scores before the relative shift, [planes, n_chunks, chunk, width]; query
 *   i = k * chunk + r reads its keys from offset shift * chunk + r * (width - shift) of chunk k, as
 *   pf_relative_shift does; with `cls` the <cls> row and column (query 0, key 0) take no position term;
 * - token type: u * pair_diff + v * pair_same with (u, v) = uv[plane, i] ([planes, q_len, 2]) and pair_diff /
 *   pair_same [batch, q_len, keys]: 1 where the two tokens are in different / the same segment, 0 where <cls>
 *   takes no such term;
 * - key_bias: [batch, keys], added to every query's row (the mask's penalty), or NULL. */
struct attention_args {
    const float *content, *position, *uv, *pair_diff, *pair_same, *key_bias, *grad, *probs;
    float *out, *grad_content, *grad_position, *grad_uv;
    int64_t planes, heads, q_len, keys, n_chunks, chunk, width, shift;
    int cls;
};

/* Where query i's row of position scores starts in its plane's buffer (block = plane * n_chunks + chunk index). */
static inline int64_t position_row_offset(const struct attention_args *a, int64_t r) {
    return a->shift * a->chunk + r * (a->width - a->shift);
}

/* out = content + position (none where `position` is NULL, and none in column 0 with `skip_first`) + u * diff +
 * v * same (+ bias). */
PF_CLONES static void score_row(const float *restrict content, const float *restrict position, int skip_first,
                                const float *restrict diff, const float *restrict same, const float *restrict bias,
                                float u, float v, float *restrict out, int64_t keys) {
    if (position) {
        for (int64_t j = 0; j < keys; ++j) out[j] = content[j] + position[j];
        if (skip_first) out[0] = content[0];
    } else {
        memcpy(out, content, (size_t)keys * sizeof(float));
    }
    for (int64_t j = 0; j < keys; ++j) out[j] += u * diff[j] + v * same[j];
    if (bias)
        for (int64_t j = 0; j < keys; ++j) out[j] += bias[j];
}

static void attention_softmax_body(const void *raw, int t, int n) {
    const struct attention_args *a = raw;
    const int64_t keys = a->keys, rows = a->planes * a->q_len;
    for (int64_t row = pf_share(rows, t, n); row < pf_share(rows, t + 1, n); ++row) {
        const int64_t plane = row / a->q_len, i = row % a->q_len, b = plane / a->heads;
        const int64_t block = plane * a->n_chunks + i / a->chunk, pair = (b * a->q_len + i) * keys;
        const float *position = a->cls && i == 0 ? NULL
                                : a->position + block * a->chunk * a->width + position_row_offset(a, i % a->chunk);
        float *out = a->out + row * keys;
        score_row(a->content + row * keys, position, a->cls, a->pair_diff + pair, a->pair_same + pair,
                  a->key_bias ? a->key_bias + b * keys : NULL, a->uv[2 * row], a->uv[2 * row + 1], out, keys);
        softmax_row(out, out, keys);
    }
}

void pf_attention_softmax(const float *content, const float *position, const float *uv, const float *pair_diff,
                          const float *pair_same, const float *key_bias, float *probs, int64_t planes, int64_t heads,
                          int64_t q_len, int64_t keys, int64_t n_chunks, int64_t chunk, int64_t width, int64_t shift,
                          int cls) {
    struct attention_args a = {.content = content, .position = position, .uv = uv, .pair_diff = pair_diff,
                               .pair_same = pair_same, .key_bias = key_bias, .out = probs, .planes = planes,
                               .heads = heads, .q_len = q_len, .keys = keys, .n_chunks = n_chunks, .chunk = chunk,
                               .width = width, .shift = shift, .cls = cls};
    pf_run(attention_softmax_body, &a, planes * q_len * keys);
}

/* (sum of g * diff, sum of g * same) over a row: the gradients of u and v. */
PF_CLONES static void pair_sums(const float *restrict g, const float *restrict diff, const float *restrict same,
                                float *restrict grad_uv, int64_t keys) {
    float du = 0.0f, dv = 0.0f;
#pragma omp simd reduction(+ : du, dv)
    for (int64_t j = 0; j < keys; ++j) {
        du += g[j] * diff[j];
        dv += g[j] * same[j];
    }
    grad_uv[0] = du;
    grad_uv[1] = dv;
}

/* Per chunk of queries: the score gradient (softmax's), which is the content term's; the same values scattered
 * into the zeroed position buffer where the forward read them (rows never overlap: width - shift >= keys); and
 * the gradients of u and v. */
static void attention_softmax_backward_body(const void *raw, int t, int n) {
    const struct attention_args *a = raw;
    const int64_t keys = a->keys, blocks = a->planes * a->n_chunks, size = a->chunk * a->width;
    for (int64_t block = pf_share(blocks, t, n); block < pf_share(blocks, t + 1, n); ++block) {
        const int64_t plane = block / a->n_chunks, b = plane / a->heads, first = (block % a->n_chunks) * a->chunk;
        float *position = a->grad_position + block * size;
        memset(position, 0, (size_t)size * sizeof(float));
        for (int64_t r = 0; r < a->chunk && first + r < a->q_len; ++r) {
            const int64_t i = first + r, row = plane * a->q_len + i, pair = (b * a->q_len + i) * keys;
            float *grad_scores = a->grad_content + row * keys;
            softmax_grad_row(a->grad + row * keys, a->probs + row * keys, grad_scores, keys);
            if (!(a->cls && i == 0)) {
                float *to = position + position_row_offset(a, r);
                memcpy(to, grad_scores, (size_t)keys * sizeof(float));
                if (a->cls) to[0] = 0.0f;
            }
            pair_sums(grad_scores, a->pair_diff + pair, a->pair_same + pair, a->grad_uv + 2 * row, keys);
        }
    }
}

/* Gradients of pf_attention_softmax's content, position (its pre-shift layout) and uv inputs. */
void pf_attention_softmax_backward(const float *grad, const float *probs, const float *pair_diff,
                                   const float *pair_same, float *grad_content, float *grad_position, float *grad_uv,
                                   int64_t planes, int64_t heads, int64_t q_len, int64_t keys, int64_t n_chunks,
                                   int64_t chunk, int64_t width, int64_t shift, int cls) {
    struct attention_args a = {.grad = grad, .probs = probs, .pair_diff = pair_diff, .pair_same = pair_same,
                               .grad_content = grad_content, .grad_position = grad_position, .grad_uv = grad_uv,
                               .planes = planes, .heads = heads, .q_len = q_len, .keys = keys, .n_chunks = n_chunks,
                               .chunk = chunk, .width = width, .shift = shift, .cls = cls};
    pf_run(attention_softmax_backward_body, &a, planes * n_chunks * chunk * width);
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

/* One parameter's update: its tensors and per-step constants. */
struct adamw_tensor {
    float *param, *moment1, *moment2;
    const float *grad;
    int64_t count;
    float step, epsilon, decay;
};

struct adamw_args {
    const struct adamw_tensor *tensors;
    int n_tensors;
    int64_t total;
    float beta1, beta2;
};

/* Paddle's CPU adamw kernel on AVX-512 machines, rounding for rounding (its JIT code, phi/kernels/funcs/jit/gen/
 * adamw.cc: the decay, the moments and the step each end in one fused multiply-add), in place. With decay 0 it is
 * also Paddle's adam kernel (for parameters that are not decayed): p - 0 * p is p. */
PF_CLONES static void adamw_span(const struct adamw_tensor *a, float beta1, float beta2, int64_t begin,
                                 int64_t end) {
    const float step = a->step, epsilon = a->epsilon, decay = a->decay;
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

/* Thread t takes elements [total * t / n, total * (t + 1) / n) of all the tensors laid end to end, so small
 * tensors (biases, layer norms) share a thread's work instead of each waking the team. */
static void adamw_body(const void *raw, int t, int n) {
    const struct adamw_args *a = raw;
    const int64_t first = pf_share(a->total, t, n), last = pf_share(a->total, t + 1, n);
    int64_t offset = 0;
    for (int k = 0; k < a->n_tensors && offset < last; ++k) {
        const int64_t count = a->tensors[k].count;
        const int64_t begin = first > offset ? first - offset : 0, end = last - offset < count ? last - offset : count;
        if (begin < end) adamw_span(&a->tensors[k], a->beta1, a->beta2, begin, end);
        offset += count;
    }
}

/* One AdamW step of `n` parameters, in place, and their bias-correction powers advanced (each holds beta^t for
 * this step on entry, as Paddle's accumulators do). Per parameter k: `params`, `grads`, `moment1s`, `moment2s`,
 * `beta1_pows`, `beta2_pows` point at its tensors, `counts` gives its size, `learning_rates` its rate and `decays`
 * learning rate x weight-decay coefficient (0: no decay). Paddle's own kernel, one parameter at a time, took
 * 91 ms against 55 ms here for 115M parameters (RESULTS.md "Training step"). Returns -1 when out of memory. */
int pf_adamw(int n, float *const *params, const float *const *grads, float *const *moment1s,
             float *const *moment2s, float *const *beta1_pows, float *const *beta2_pows, const int64_t *counts,
             const float *learning_rates, const float *decays, float beta1, float beta2, float epsilon) {
    struct adamw_tensor *tensors = malloc((size_t)(n > 0 ? n : 1) * sizeof *tensors);
    if (!tensors) return -1;
    int64_t total = 0;
    for (int k = 0; k < n; ++k) {
        const float b1p = *beta1_pows[k], b2p = *beta2_pows[k];
        const float corrected = learning_rates[k] * (sqrtf(1.0f - b2p) / (1.0f - b1p));
        tensors[k] = (struct adamw_tensor){params[k], moment1s[k], moment2s[k], grads[k], counts[k], -corrected,
                                           epsilon * sqrtf(1.0f - b2p), decays[k]};
        total += counts[k];
    }
    struct adamw_args a = {tensors, n, total, beta1, beta2};
    pf_run(adamw_body, &a, total);
    for (int k = 0; k < n; ++k) {
        *beta1_pows[k] = beta1 * *beta1_pows[k];
        *beta2_pows[k] = beta2 * *beta2_pows[k];
    }
    free(tensors);
    return 0;
}
