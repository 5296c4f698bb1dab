CREATE TABLE "plugin_state" ("plugin" VARCHAR(100) NOT NULL, "key" VARCHAR(200) NOT NULL, "value" TEXT, "updated_at" DATETIME NOT NULL, PRIMARY KEY ("plugin", "key"));
CREATE TABLE "plugin_errors" ("id" INTEGER NOT NULL PRIMARY KEY, "plugin" VARCHAR(100) NOT NULL, "hook" VARCHAR(100) NOT NULL, "error" TEXT NOT NULL, "count" INTEGER NOT NULL, "first_at" DATETIME NOT NULL, "last_at" DATETIME NOT NULL);
CREATE UNIQUE INDEX "plugin_errors_plugin_hook_error" ON "plugin_errors" ("plugin", "hook", "error");
