#ifndef WNFLOW_CGSL_SHIM_H
#define WNFLOW_CGSL_SHIM_H
/*
 * The only place that touches GSL's mutable globals. Swift 6 strict
 * concurrency rejects reading `gsl_odeiv2_step_rk4` and friends directly
 * (they are global `var`s in Swift's eyes), so each is returned through a
 * static inline accessor. The error handler is switched off once, so that
 * GSL reports errors through return codes and never calls abort().
 */
#ifndef WNFLOW_BLAS_OPENBLAS
#define WNFLOW_BLAS_OPENBLAS 1
#endif
#include <stdlib.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_odeiv2.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_cblas.h>
#include <gsl/gsl_blas.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>
#include <gsl/gsl_roots.h>
#include <gsl/gsl_sf_log.h>
#include <gsl/gsl_sf_gamma.h>
#include <gsl/gsl_math.h>

/* Step types, in the order of the Swift `Stepper` enum. */
static inline const gsl_odeiv2_step_type *cgsl_step_rk2(void)     { return gsl_odeiv2_step_rk2; }
static inline const gsl_odeiv2_step_type *cgsl_step_rk4(void)     { return gsl_odeiv2_step_rk4; }
static inline const gsl_odeiv2_step_type *cgsl_step_rkf45(void)   { return gsl_odeiv2_step_rkf45; }
static inline const gsl_odeiv2_step_type *cgsl_step_rkck(void)    { return gsl_odeiv2_step_rkck; }
static inline const gsl_odeiv2_step_type *cgsl_step_rk8pd(void)   { return gsl_odeiv2_step_rk8pd; }
static inline const gsl_odeiv2_step_type *cgsl_step_rk1imp(void)  { return gsl_odeiv2_step_rk1imp; }
static inline const gsl_odeiv2_step_type *cgsl_step_rk2imp(void)  { return gsl_odeiv2_step_rk2imp; }
static inline const gsl_odeiv2_step_type *cgsl_step_rk4imp(void)  { return gsl_odeiv2_step_rk4imp; }
static inline const gsl_odeiv2_step_type *cgsl_step_bsimp(void)   { return gsl_odeiv2_step_bsimp; }
static inline const gsl_odeiv2_step_type *cgsl_step_msadams(void) { return gsl_odeiv2_step_msadams; }
static inline const gsl_odeiv2_step_type *cgsl_step_msbdf(void)   { return gsl_odeiv2_step_msbdf; }

/* RNG types. */
static inline const gsl_rng_type *cgsl_rng_mt19937(void) { return gsl_rng_mt19937; }

/* Root-finder types. */
static inline const gsl_root_fsolver_type *cgsl_root_brent(void)     { return gsl_root_fsolver_brent; }
static inline const gsl_root_fsolver_type *cgsl_root_bisection(void) { return gsl_root_fsolver_bisection; }

/* out[i] = sqrt(in[i]) for n entries: IEEE square roots (the same correctly rounded values
   as libm's sqrt) without libm's errno branch, so that the loop vectorizes. Swift's
   squareRoot() is libm's sqrt on Linux, one scalar sqrtsd and a test per entry. */
static inline void cgsl_sqrt_array(const double *in, double *out, long n) {
    for (long i = 0; i < n; i++) out[i] = __builtin_elementwise_sqrt(in[i]);
}

/* BLAS threads: 1 by default, so that results are byte-identical however
   runs are spread over cores (ensembles parallelize across runs instead).
   Multithreaded OpenBLAS changed the last bits at N = 2000 (2144 vs 2281
   msbdf steps). WNFLOW_BLAS_THREADS=k opts in to k threads for a single
   large run, giving up that guarantee. */
#if WNFLOW_BLAS_OPENBLAS
extern void openblas_set_num_threads(int);
/* The pthread build of OpenBLAS starts its worker threads when it is loaded;
   they spin (sched_yield) waiting for work and, on a 2-core machine, take CPU
   from the runs themselves (seen as 24% of samples in __schedule). With one
   thread they never get work, so they are shut down (weak: absent from the
   serial build). A later multithreaded call would start them again. */
extern int blas_thread_shutdown_(void) __attribute__((weak));
/* OpenBLAS picks its kernels from the CPU model when it loads. A release
   older than the CPU (Debian 12's 0.3.21 on Intel family 6 model 207, a
   machine this project ran on) falls back to "Prescott", its SSE3 kernels,
   on a CPU with AVX-512: explicit steppers ran 1.4-1.7x and bdf runs
   10-20% slower there, and three tests failed on its rounding. When that
   happened and nobody chose the kernels (OPENBLAS_CORETYPE unset), the
   kernels are chosen from what the CPU and the OS support: Haswell for
   AVX2 with FMA (also on AVX-512 CPUs: the kernels AMD Zen machines run,
   so results match theirs bit for bit, and no slower here than SkylakeX's,
   whose rounding failed two tests), Sandybridge for AVX. OpenBLAS then
   re-initializes its kernel table, before any BLAS call.
   OPENBLAS_CORETYPE=Prescott keeps the fallback. The two entry points are
   weak: a build without DYNAMIC_ARCH has one kernel set and lacks them.
   Returns the kernel name chosen, or NULL when none was. */
#include <string.h>
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));
extern char *openblas_get_corename(void);
static inline const char *cgsl_blas_best_x86_core(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    if (__builtin_cpu_supports("avx")) return "Sandybridge";
#endif
    return NULL;
}
static inline const char *cgsl_blas_replace_fallback(void) {
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || getenv("OPENBLAS_CORETYPE")) return NULL;
    const char *core = openblas_get_corename();
    if (!core || strcmp(core, "Prescott") != 0) return NULL;
    const char *pick = cgsl_blas_best_x86_core();
    if (!pick) return NULL;
    setenv("OPENBLAS_CORETYPE", pick, 0);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    /* OpenBLAS read it only there; unset, so that child processes choose for themselves. */
    unsetenv("OPENBLAS_CORETYPE");
    core = openblas_get_corename();
    return core && strcmp(core, "Prescott") != 0 ? core : NULL;
}
static inline int cgsl_blas_configure(void) {
    int replaced = cgsl_blas_replace_fallback() != NULL;
    const char *s = getenv("WNFLOW_BLAS_THREADS");
    int k = s ? atoi(s) : 1;
    openblas_set_num_threads(k > 0 ? k : 1);
    if (k <= 1 && blas_thread_shutdown_) (void)blas_thread_shutdown_();
    return replaced;
}
static inline const char *cgsl_blas_name(void) { return "openblas"; }
static inline void cgsl_blas_set_threads(int k) { openblas_set_num_threads(k > 0 ? k : 1); }
/* The kernels OpenBLAS picked for this CPU at load time ("Haswell", "Zen",
   "SkylakeX", ...; OPENBLAS_CORETYPE forces one) and its build line
   ("OpenBLAS 0.3.21 ... Zen MAX_THREADS=64"). Different kernels round
   differently, so they are part of a result's provenance. */
extern char *openblas_get_config(void);
static inline const char *cgsl_blas_kernel(void) { return openblas_get_corename(); }
static inline const char *cgsl_blas_config(void) { return openblas_get_config(); }
/* Cholesky of a row-major n x n matrix from its lower triangle, L left there:
   LAPACK's dpotrf as OpenBLAS ships it (column-major 'U' on the same storage).
   0 on success, > 0 when the matrix is not positive definite. */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
static inline int cgsl_cholesky_lower(double *a, int n) {
    char uplo = 'U';
    int info = 0;
    dpotrf_(&uplo, &n, a, &n, &info);
    return info;
}
/* Thin SVD of the column-major r x c matrix a (overwritten), k = min(r, c):
   s (k, decreasing), u (r x k, ld r), vt (k x c, ld k), by LAPACK's dgesdd
   (bidiagonalization and divide and conquer; numpy's and scipy's default
   driver) as OpenBLAS ships it. Returns LAPACK's info: 0 on success, > 0
   when it did not converge, < -999 when out of memory. */
extern void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s,
                    double *u, const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork,
                    int *iwork, int *info);
static inline int cgsl_lapack_svd(int r, int c, double *a, double *s, double *u, double *vt) {
    char job = 'S';
    int k = r < c ? r : c, lwork = -1, info = 0;
    double query = 0;
    int *iwork = (int *)malloc(sizeof(int) * 8 * (size_t)(k > 0 ? k : 1));
    if (!iwork) return -1000;
    dgesdd_(&job, &r, &c, a, &r, s, u, &r, vt, &k, &query, &lwork, iwork, &info);
    if (info != 0) { free(iwork); return info; }
    lwork = (int)query > 1 ? (int)query : 1;
    double *work = (double *)malloc(sizeof(double) * (size_t)lwork);
    if (!work) { free(iwork); return -1000; }
    dgesdd_(&job, &r, &c, a, &r, s, u, &r, vt, &k, work, &lwork, iwork, &info);
    free(work);
    free(iwork);
    return info;
}
/* Householder QR of the column-major r x c matrix a (r >= c; overwritten: R in
   its upper triangle, the reflectors below) by LAPACK's blocked dgeqrf as
   OpenBLAS ships it; tau holds c doubles. Returns LAPACK's info (0 on success),
   -1000 when out of memory. */
extern void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau,
                    double *work, const int *lwork, int *info);
static inline int cgsl_qr_colmajor(int r, int c, double *a, double *tau) {
    int lwork = -1, info = 0;
    double query = 0;
    dgeqrf_(&r, &c, a, &r, tau, &query, &lwork, &info);
    if (info != 0) return info;
    lwork = (int)query > 1 ? (int)query : 1;
    double *work = (double *)malloc(sizeof(double) * (size_t)lwork);
    if (!work) return -1000;
    dgeqrf_(&r, &c, a, &r, tau, work, &lwork, &info);
    free(work);
    return info;
}
#else
/* Householder QR of the column-major r x c matrix a (r >= c), R left in its
   upper triangle (the rest is scratch), by GSL on a row-major copy. */
static inline int cgsl_qr_colmajor(int r, int c, double *a, double *tau) {
    gsl_matrix *m = gsl_matrix_alloc((size_t)r, (size_t)c);
    if (!m) return -1000;
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) gsl_matrix_set(m, (size_t)i, (size_t)j, a[i + (size_t)j * r]);
    gsl_vector_view t = gsl_vector_view_array(tau, (size_t)c);
    int status = gsl_linalg_QR_decomp(m, &t.vector);
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) a[i + (size_t)j * r] = gsl_matrix_get(m, (size_t)i, (size_t)j);
    gsl_matrix_free(m);
    return status;
}
/* No LAPACK with GSL's CBLAS: the Swift side falls back to GSL's SVD. */
static inline int cgsl_lapack_svd(int r, int c, double *a, double *s, double *u, double *vt) {
    (void)r; (void)c; (void)a; (void)s; (void)u; (void)vt;
    return -1;
}
static inline int cgsl_cholesky_lower(double *a, int n) {
    gsl_matrix_view v = gsl_matrix_view_array(a, (size_t)n, (size_t)n);
    return gsl_linalg_cholesky_decomp1(&v.matrix);
}
static inline const char *cgsl_blas_kernel(void) { return "reference"; }
static inline const char *cgsl_blas_config(void) { return "GSL CBLAS"; }
static inline void cgsl_blas_set_threads(int k) { (void)k; }
static inline int cgsl_blas_configure(void) { return 0; }
static inline const char *cgsl_blas_best_x86_core(void) { return NULL; }
static inline const char *cgsl_blas_name(void) { return "gslcblas"; }
#endif

/* Error handling: turned off once; idempotent and thread-safe in effect
   (every call stores the same value). */
static inline void cgsl_errors_off(void) { gsl_set_error_handler_off(); }

/* GSL status codes the Swift layer names. */
static inline int cgsl_success(void)  { return GSL_SUCCESS; }
static inline int cgsl_ebadfunc(void) { return GSL_EBADFUNC; }
static inline int cgsl_failure(void)  { return GSL_FAILURE; }
static inline int cgsl_continue(void) { return GSL_CONTINUE; }

/* Evolve statistics (the struct is public, but keep field access here). */
static inline unsigned long cgsl_evolve_failed(const gsl_odeiv2_driver *d) { return d->e->failed_steps; }
static inline void cgsl_evolve_reset_counts(gsl_odeiv2_driver *d) { d->e->count = 0; d->e->failed_steps = 0; }
static inline double cgsl_evolve_last_step(const gsl_odeiv2_driver *d) { return d->e->last_step; }
/* Apply one adaptive step with the driver's own step, control and evolve objects. */
static inline int cgsl_driver_evolve_apply(gsl_odeiv2_driver *d, double *t, double t1, double *h, double y[]) {
    return gsl_odeiv2_evolve_apply(d->e, d->c, d->s, d->sys, t, t1, h, y);
}
/* Make the next evolve call evaluate f at its start instead of reusing the last step's
   f(t₁, y₁) (evolve does so once count > 0): for a state the caller moved or restored. */
static inline void cgsl_evolve_forget_derivative(gsl_odeiv2_driver *d) { d->e->count = 0; }
/* Clear the stepper's memory only (the multistep methods keep a history). */
static inline int cgsl_driver_step_reset(gsl_odeiv2_driver *d) { return gsl_odeiv2_step_reset(d->s); }
static inline int cgsl_driver_set_hmax(gsl_odeiv2_driver *d, double hmax) { return gsl_odeiv2_driver_set_hmax(d, hmax); }
#endif
