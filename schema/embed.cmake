# Turns schema/NNN_name.sql files into a C array, in order:
#   const struct schema_migration schema_migrations[]; const int schema_count;
file(WRITE ${OUT} "/* generated from the schema migrations by schema/embed.cmake */\n")
file(APPEND ${OUT} "struct schema_migration { int version; const char *name; const char *sql; };\n")
file(APPEND ${OUT} "const struct schema_migration schema_migrations[] = {\n")
string(REPLACE "|" ";" SQL "${SQL}")
set(n 0)
foreach(f ${SQL})
  get_filename_component(base ${f} NAME_WE)
  string(SUBSTRING ${base} 0 3 ver)
  math(EXPR ver "${ver}")
  file(READ ${f} body HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" body "${body}")
  # split into lines of string literal pieces to keep lines short
  string(REGEX REPLACE "((\\\\x[0-9a-f][0-9a-f]){32})" "\\1\"\n\t\"" body "${body}")
  file(APPEND ${OUT} "\t{ ${ver}, \"${base}\",\n\t\"${body}\" },\n")
  math(EXPR n "${n} + 1")
endforeach()
file(APPEND ${OUT} "};\nconst int schema_count = ${n};\n")
