#ifndef WNFLOW_CGLPK_SHIM_H
#define WNFLOW_CGLPK_SHIM_H
#include <glpk.h>

/* GLPK's control parameters as plain values, so that Swift never touches
   its mutable globals. Quiet output, presolver on. */
static inline void cglpk_quiet(void) { glp_term_out(GLP_OFF); }
static inline int cglpk_msg_off(void) { return GLP_MSG_OFF; }
#endif
