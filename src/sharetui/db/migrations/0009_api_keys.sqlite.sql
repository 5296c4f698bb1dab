CREATE TABLE "api_keys" ("id" INTEGER NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "access_key" VARCHAR(64) NOT NULL, "secret_hash" VARCHAR(255) NOT NULL, "label" VARCHAR(100) NOT NULL, "created_by_id" INTEGER, "created_at" DATETIME NOT NULL, "last_used_at" DATETIME, "revoked_at" DATETIME, "revoked_by_id" INTEGER, FOREIGN KEY ("user_id") REFERENCES "users" ("id"));
CREATE UNIQUE INDEX "api_keys_access_key" ON "api_keys" ("access_key");
CREATE INDEX "api_keys_user_id_id" ON "api_keys" ("user_id", "id");
