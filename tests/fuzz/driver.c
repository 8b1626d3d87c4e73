/*
 * driver — a plain main() for the fuzz harnesses when they are built
 * without libFuzzer (gcc, the normal and ASan builds): runs
 * LLVMFuzzerTestOneInput() once on every file named, or on every file in
 * every directory named, so ctest replays the regression inputs and seeds
 * (tests/fuzz/regress/, tests/fuzz/corpus/) in every build.  A crash, a
 * sanitizer report or a leak fails the run like it fails libFuzzer.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long len;

	/* exactly len bytes, like libFuzzer: no terminator to lean on */
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc(len > 0 ? (size_t)len : 1)) == NULL ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len) {
		perror(path);
		if (f != NULL)
			fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	fprintf(stderr, "running %s (%ld bytes)\n", path, len);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int
main(int argc, char **argv)
{
	int i, n, k, bad = 0, ran = 0;
	struct dirent **ents;
	struct stat sb;
	char path[4096];

	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;	/* libFuzzer flags: not ours */
		if (stat(argv[i], &sb) == -1) {
			perror(argv[i]);
			bad = 1;
			continue;
		}
		if (!S_ISDIR(sb.st_mode)) {
			bad |= run_file(argv[i]) == -1;
			ran++;
			continue;
		}
		if ((n = scandir(argv[i], &ents, NULL, by_name)) < 0) {
			perror(argv[i]);
			bad = 1;
			continue;
		}
		for (k = 0; k < n; k++) {
			snprintf(path, sizeof path, "%s/%s", argv[i],
			    ents[k]->d_name);
			if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
				bad |= run_file(path) == -1;
				ran++;
			}
			free(ents[k]);
		}
		free(ents);
	}
	fprintf(stderr, "%d input(s) run\n", ran);
	return bad || ran == 0;
}
