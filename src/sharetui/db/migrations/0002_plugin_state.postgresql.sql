CREATE TABLE "plugin_state" ("plugin" VARCHAR(100) NOT NULL, "key" VARCHAR(200) NOT NULL, "value" TEXT, "updated_at" TIMESTAMP NOT NULL, PRIMARY KEY ("plugin", "key"));
CREATE TABLE "plugin_errors" ("id" SERIAL NOT NULL PRIMARY KEY, "plugin" VARCHAR(100) NOT NULL, "hook" VARCHAR(100) NOT NULL, "error" TEXT NOT NULL, "count" INTEGER NOT NULL, "first_at" TIMESTAMP NOT NULL, "last_at" TIMESTAMP NOT NULL);
CREATE UNIQUE INDEX "plugin_errors_plugin_hook_error" ON "plugin_errors" ("plugin", "hook", "error");
