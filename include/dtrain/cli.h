/* cli.h: the subcommands of the `dtrain` binary and their shared options.
 *
 * Each dt_cmd_* takes the arguments after the subcommand name (argv[0] is
 * the subcommand) and returns a process exit code (error.h); on failure the
 * message is in dt_error_message().
 */
#ifndef DTRAIN_CLI_H
#define DTRAIN_CLI_H

#include <stdint.h>

#include "dtrain/config.h"

/* Options every subcommand accepts. */
typedef struct {
  const char **configs; /* --config files, in order (each layered over the ones before) */
  int n_configs;
  const char **sets; /* "key=value" overrides, in order */
  int n_sets;
  int quiet, verbose, log_all_ranks;
} dt_cli_common;

/* getopt_long values of the shared options (above any short option). */
enum { DT_OPT_CONFIG = 'c', DT_OPT_SET = 1000, DT_OPT_QUIET, DT_OPT_VERBOSE, DT_OPT_LOG_ALL_RANKS, DT_OPT_HELP };

#define DT_CLI_COMMON_LONG_OPTIONS                                                            \
  {"config", required_argument, 0, DT_OPT_CONFIG}, {"set", required_argument, 0, DT_OPT_SET}, \
      {"quiet", no_argument, 0, DT_OPT_QUIET}, {"verbose", no_argument, 0, DT_OPT_VERBOSE},   \
      {"log-all-ranks", no_argument, 0, DT_OPT_LOG_ALL_RANKS}, {                              \
    "help", no_argument, 0, DT_OPT_HELP                                                       \
  }

#define DT_CLI_COMMON_HELP                                                                           \
  "  -c, --config FILE     JSON config (may \"extends\" others); repeatable: each file is\n"         \
  "                        layered over the ones before it (later wins); default: schema defaults\n" \
  "      --set KEY=VALUE   override one config key (repeatable), e.g. --set train.lr=5e-4\n"         \
  "      --quiet           only warnings and errors\n"                                               \
  "      --verbose         debug messages too\n"                                                     \
  "      --log-all-ranks   every MPI rank logs, not only rank 0\n"                                   \
  "      --help            this help\n"

/* Handles one shared option; returns 1 if `opt` was one, 0 otherwise. */
int dt_cli_common_option(int opt, const char *arg, dt_cli_common *common);
/* Applies --quiet/--verbose/--log-all-ranks to the logger. */
void dt_cli_apply_logging(const dt_cli_common *common);
/* Builds the configuration from the --config files (in order) and --set. */
int dt_cli_build_config(const dt_cli_common *common, dt_config *cfg);
/* The configuration of a command working from a checkpoint: the --config
 * files when given, else the merged config stored in the checkpoint; then --set.
 * *ckpt_crc (may be NULL) gets the checkpoint's data-set checksum. */
int dt_cli_config_for_checkpoint(const dt_cli_common *common, const char *checkpoint, dt_config *cfg,
                                 uint32_t *ckpt_crc);
/* The data set a command opened (data_path, CRC-32 data_crc of the whole
 * prepared file) against the one checkpoint `ckpt` was trained on (its
 * dataset_crc32, ckpt_crc): a different one stops resume and recommend
 * (DT_EXIT_DATA, naming --allow-other-data) unless allow_other; eval passes
 * warn_only and gets a warning. A checkpoint without a checksum (0) passes
 * with a warning. Prepared files are byte-reproducible (h5io.h), so the
 * same input and data.* config prepared again pass. recommend calls this
 * only when it opens a data set. */
int dt_cli_check_checkpoint_data(const char *ckpt, uint32_t ckpt_crc, const char *data_path, uint32_t data_crc,
                                 int allow_other, int warn_only);
/* Whether the file at `path` is a JSON object (its first line only, for
 * JSON lines) holding every key of keys[]: how the commands recognise an
 * output they wrote before (fsutil.h's dt_output_check). */
int dt_cli_json_has_keys(const char *path, const char *const *keys, int n_keys, int first_line);
/* getopt's '?' or ':' for `command`: the option it could not take
 * (argv[optind - 1]) as a usage error (DT_EXIT_USAGE). */
int dt_cli_unknown_option(const char *command, char **argv);
/* A required option: `value` NULL is a usage error naming `option` (e.g.
 * "--checkpoint FILE"). */
int dt_cli_required(const char *command, const char *option, const void *value);
/* Prints "unexpected argument" for leftovers; returns DT_EXIT_USAGE or 0. */
int dt_cli_no_positionals(int argc, char **argv, int optind_, const char *command);
void dt_cli_common_free(dt_cli_common *common);

int dt_cmd_train(int argc, char **argv);
int dt_cmd_prep(int argc, char **argv);
int dt_cmd_eval(int argc, char **argv);
int dt_cmd_recommend(int argc, char **argv);
int dt_cmd_config(int argc, char **argv);
int dt_cmd_report(int argc, char **argv);
int dt_cmd_users(int argc, char **argv);
int dt_cmd_export(int argc, char **argv);

/* Prints version, git hash, compiled-in backends and library versions. */
void dt_print_version(void);

#endif
